/**
 * `pull`: the one download path behind `inferctl pull` and `POST /api/pull`. Resolves a reference
 * against the hub's file listing (or takes a URL), downloads to a `.partial` name with resume,
 * verifies the SHA-256 (the hub's LFS digest or the caller's `sha256`), runs the GGUF validation
 * every model passes before llama.cpp sees it, and only then renames the file into the store and
 * writes its manifest. A failed digest or validation removes the file; a cut download keeps the
 * partial file for the next pull. Progress is reported as events the surfaces render.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { InferFluxError } from '../../errors.js';
import { GgufFormatError, validateGguf } from '../gguf/reader.js';
import { downloadResumable, sha256OfFile, type DownloadProgress } from './download.js';
import { listRepo, pickGguf, quantOf, resolveUrl } from './hub.js';
import { fileStem, parseModelRef, type ModelRef } from './model-ref.js';
import { ModelStore, type StoredModel } from './model-store.js';
import type { NetPolicy, OriginCredential } from './safe-get.js';

export interface PullSettings {
  modelsDir: string;
  /** Base URL of the hub (`https://huggingface.co`). */
  hubUrl: string;
  /**
   * Bearer token for the hub (HF_TOKEN), sent to the hub's origin only: never to the CDN it
   * redirects downloads to, nor to any other host. Null sends none.
   */
  token: string | null;
  net: NetPolicy;
}

export interface PullRequest {
  ref: string;
  /** Quant label for an `owner/repo` reference (the same as `owner/repo:QUANT`). */
  quant?: string;
  /** Expected SHA-256 (hex); required to match the hub's when both exist. */
  sha256?: string;
  /** Stored name instead of the one derived from the reference. */
  name?: string;
  signal?: AbortSignal;
  onEvent?: (ev: PullEvent) => void;
}

export type PullEvent =
  | { kind: 'resolving'; ref: string }
  | { kind: 'resolved'; name: string; file: string; url: string; size: number | null; sha256: string | null }
  | { kind: 'attempt'; attempt: number; offset: number }
  | ({ kind: 'progress'; label: string } & DownloadProgress)
  | { kind: 'verifying' }
  | { kind: 'validating' }
  | { kind: 'writing' }
  | { kind: 'done'; model: StoredModel; downloaded: boolean };

interface Resolved {
  name: string;
  url: URL;
  file: string;
  size: number | null;
  sha256: string | null;
  quant: string | null;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function hubBase(s: PullSettings): URL {
  try {
    return new URL(s.hubUrl);
  } catch {
    throw new InferFluxError('invalid_request', `pull.hub_url is not a URL: ${s.hubUrl}`);
  }
}

function credentialOf(s: PullSettings): OriginCredential {
  return { origin: hubBase(s).origin, token: s.token };
}

async function resolveRef(s: PullSettings, ref: ModelRef, signal?: AbortSignal): Promise<Resolved> {
  if (ref.kind === 'url') {
    const url = new URL(ref.url.href);
    return { name: ref.name, url, file: decodeURIComponent(url.pathname.split('/').pop() ?? ''), size: null, sha256: null, quant: quantOf(url.pathname) };
  }
  const hub = hubBase(s);
  const repoName = `${ref.owner}/${ref.repo}`;
  const files = await listRepo(s.net, hub, ref.owner, ref.repo, signal, credentialOf(s));
  const file =
    ref.kind === 'repo'
      ? pickGguf(files, ref.quant === 'latest' ? null : ref.quant, repoName)
      : files.find((f) => f.path === ref.file);
  if (!file) throw new InferFluxError('model_not_found', `${repoName} has no file ${ref.kind === 'file' ? ref.file : ''}`, { param: 'model' });
  return { name: ref.name, url: resolveUrl(hub, ref.owner, ref.repo, file.path), file: file.path, size: file.size, sha256: file.sha256, quant: quantOf(file.path) };
}

/** One pull per partial file at a time, across processes: a lock file holding the owner's pid. */
async function lock(path: string, what: string): Promise<() => Promise<void>> {
  for (let tries = 0; tries < 2; tries++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx' });
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new InferFluxError('pull_in_progress', `${what} is already being pulled (process ${pid}); wait for it to finish`);
    await rm(path, { force: true }); // the owner died: its partial file is ours to resume
  }
  throw new InferFluxError('pull_in_progress', `${what} is already being pulled`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function pullModel(s: PullSettings, req: PullRequest): Promise<StoredModel> {
  const emit = req.onEvent ?? (() => undefined);
  const wanted = req.sha256?.trim().toLowerCase().replace(/^sha256:/, '');
  if (wanted !== undefined && !SHA256_HEX.test(wanted)) throw new InferFluxError('invalid_request', `--sha256 must be 64 hex digits, got ${JSON.stringify(req.sha256)}`, { param: 'sha256' });
  let ref = parseModelRef(req.ref, req.name);
  if (req.quant !== undefined) {
    if (ref.kind !== 'repo') throw new InferFluxError('invalid_request', 'a quant applies to an owner/repo reference, not to a file or URL', { param: 'quant' });
    if (ref.quant !== null && ref.quant.toLowerCase() !== req.quant.toLowerCase()) throw new InferFluxError('invalid_request', `the reference names quant ${ref.quant} and --quant says ${req.quant}`, { param: 'quant' });
    ref = parseModelRef(`${req.ref.replace(/:[^/]*$/, '')}:${req.quant}`, req.name);
  }
  emit({ kind: 'resolving', ref: req.ref });
  const r = await resolveRef(s, ref, req.signal);
  if (wanted !== undefined && r.sha256 !== null && wanted !== r.sha256) {
    throw new InferFluxError('digest_mismatch', `the hub lists sha256 ${r.sha256} for ${r.file}, not the ${wanted} asked for; nothing was downloaded`);
  }
  const expected = wanted ?? r.sha256;
  emit({ kind: 'resolved', name: r.name, file: r.file, url: r.url.href, size: r.size, sha256: expected });

  const store = new ModelStore(s.modelsDir);
  await store.ensureDirs();
  const manifest = (sha256: string, size: number, architecture: string | null) =>
    store.put({ name: r.name, source: req.ref, url: r.url.origin + r.url.pathname, quant: r.quant, sha256, size, pulled_at: new Date().toISOString(), architecture });
  const label = expected !== null ? `sha256:${expected}` : fileStem(r.file) || 'model';

  if (expected !== null && (await store.hasBlob(expected))) {
    // Already stored under another name or an earlier pull: a new manifest is all it takes.
    const existing = (await store.list()).find((m) => m.sha256 === expected);
    const size = existing?.size ?? r.size ?? 0;
    emit({ kind: 'progress', label, total: size, completed: size, bytesPerSecond: 0, etaSeconds: 0 });
    emit({ kind: 'writing' });
    const model = await manifest(expected, size, existing?.architecture ?? null);
    emit({ kind: 'done', model, downloaded: false });
    return model;
  }

  const key = expected ?? createHash('sha256').update(r.url.href).digest('hex');
  const partial = store.partialPath(key);
  const unlock = await lock(`${partial}.lock`, r.name);
  try {
    const { size } = await downloadResumable({
      policy: s.net,
      url: r.url,
      credential: credentialOf(s),
      partial,
      expectedSize: r.size,
      signal: req.signal,
      onAttempt: (attempt, offset) => emit({ kind: 'attempt', attempt, offset }),
      onProgress: (p) => emit({ kind: 'progress', label, ...p }),
    });
    emit({ kind: 'verifying' });
    const actual = await sha256OfFile(partial);
    if (expected !== null && actual !== expected) {
      await rm(partial, { force: true });
      throw new InferFluxError('digest_mismatch', `${r.file}: sha256 is ${actual}, expected ${expected}; the file was removed`);
    }
    emit({ kind: 'validating' });
    let architecture: string | null = null;
    try {
      const info = await validateGguf(partial);
      const arch = info.metadata['general.architecture'];
      architecture = typeof arch === 'string' ? arch : null;
    } catch (err) {
      await rm(partial, { force: true });
      const why = err instanceof GgufFormatError ? `${err.reason}: ${err.message}` : err instanceof Error ? err.message : String(err);
      throw new InferFluxError('invalid_model_file', `${r.file} is not a GGUF this server can load (${why}); the file was removed`);
    }
    emit({ kind: 'writing' });
    await rename(partial, store.blobPath(actual));
    const model = await manifest(actual, size, architecture);
    emit({ kind: 'done', model, downloaded: true });
    return model;
  } finally {
    await unlock();
  }
}
