/**
 * The local store of pulled models, under one directory:
 *
 *   blobs/sha256-<hex>.gguf        the model files, named by content (never by a hub's file name)
 *   blobs/<key>.partial            downloads in progress (resumed by the next pull)
 *   manifests/<encoded name>.json  one small manifest per model name (name, source, sha256, size, ...)
 *
 * Names and digests are checked before they become file names, and every path is confirmed to be
 * inside the directory, so nothing a user or a hub sends can write elsewhere. A copy is a second
 * manifest for the same blob; removing the last manifest of a blob removes the blob.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { InferFluxError } from '../../errors.js';
import { readJsonDir, readJsonFile, writeJsonAtomically } from './json-dir.js';
import { checkModelName } from './model-ref.js';

export interface ModelManifest {
  name: string;
  /** What was pulled: `owner/repo:Q4_K_M`, `hf://...` or a URL. */
  source: string;
  /** The file's URL before redirects (no query string). */
  url: string;
  /** The quant label of the file name, when it has one. */
  quant: string | null;
  sha256: string;
  size: number;
  /** ISO 8601. */
  pulled_at: string;
  /** `general.architecture` of the GGUF. */
  architecture: string | null;
}

export interface StoredModel extends ModelManifest {
  /** Absolute path of the GGUF. */
  path: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export class ModelStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** Throws unless `p` is strictly inside the store directory. */
  private inside(p: string): string {
    const abs = resolve(p);
    if (!abs.startsWith(this.dir + sep)) throw new InferFluxError('invalid_request', `refusing path outside the models directory: ${abs}`);
    return abs;
  }

  blobPath(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new InferFluxError('invalid_request', `not a SHA-256 digest: ${JSON.stringify(sha256)}`, { param: 'sha256' });
    return this.inside(join(this.dir, 'blobs', `sha256-${sha256}.gguf`));
  }

  /** A partial download's path; `key` is a hex digest (of the file's expected content or its URL). */
  partialPath(key: string): string {
    if (!SHA256_HEX.test(key)) throw new Error(`partial key must be hex sha256, got ${key}`);
    return this.inside(join(this.dir, 'blobs', `${key}.partial`));
  }

  private manifestPath(name: string): string {
    return this.inside(join(this.dir, 'manifests', `${encodeURIComponent(checkModelName(name))}.json`));
  }

  async ensureDirs(): Promise<void> {
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    await mkdir(join(this.dir, 'manifests'), { recursive: true });
  }

  private withPath(m: ModelManifest): StoredModel {
    return { ...m, path: this.blobPath(m.sha256) };
  }

  async get(name: string): Promise<StoredModel | undefined> {
    const m = await readJsonFile(this.manifestPath(name), parseManifest);
    return m && this.withPath(m);
  }

  /** Every stored model, by name. A manifest that does not parse (half-written, foreign) is skipped. */
  async list(): Promise<StoredModel[]> {
    return (await readJsonDir(join(this.dir, 'manifests'), parseManifest)).map((m) => this.withPath(m));
  }

  /** Writes (or replaces) a manifest atomically. */
  async put(m: ModelManifest): Promise<StoredModel> {
    await this.ensureDirs();
    await writeJsonAtomically(join(this.dir, 'manifests'), this.manifestPath(m.name), m);
    return this.withPath(m);
  }

  async copy(source: string, destination: string): Promise<StoredModel> {
    const m = await this.get(source);
    if (!m) throw notStored(source, 'source');
    const { path: _path, ...manifest } = m;
    return this.put({ ...manifest, name: checkModelName(destination, 'destination') });
  }

  /** Removes the name; the blob goes too when no other name refers to it. */
  async remove(name: string): Promise<StoredModel> {
    const m = await this.get(name);
    if (!m) throw notStored(name, 'model');
    await rm(this.manifestPath(m.name), { force: true });
    const others = (await this.list()).some((o) => o.sha256 === m.sha256);
    if (!others) await rm(m.path, { force: true });
    return m;
  }

  async hasBlob(sha256: string): Promise<boolean> {
    try {
      return (await stat(this.blobPath(sha256))).isFile();
    } catch {
      return false;
    }
  }
}

function notStored(name: string, param: string): InferFluxError {
  return new InferFluxError('model_not_found', `model '${name}' is not in the local models directory`, { param });
}

function parseManifest(text: string): ModelManifest {
  const m = JSON.parse(text) as ModelManifest;
  if (typeof m.name !== 'string' || typeof m.sha256 !== 'string' || !SHA256_HEX.test(m.sha256) || typeof m.size !== 'number') {
    throw new Error('not a model manifest');
  }
  return m;
}
