/**
 * A Hugging Face-style hub: the file listing of a repository and the GGUF in it for a quant.
 *
 * The listing is `GET {hub}/api/models/{owner}/{repo}/tree/main?recursive=true`: a JSON array of
 * `{type, path, size, oid, lfs?: {oid, size}}` where `lfs.oid` is the file's SHA-256 (the hub's
 * LFS pointer), paged with a `Link: <...>; rel="next"` header. Files download from
 * `{hub}/{owner}/{repo}/resolve/main/{path}`, which redirects large files to a CDN.
 */
import { InferFluxError } from '../../errors.js';
import { checkRepoFilePath } from './model-ref.js';
import { hubAccessDenied, safeGet, type NetPolicy, type OriginCredential } from './safe-get.js';

export interface HubFile {
  path: string;
  size: number;
  /** Lower-case hex SHA-256 from the listing's LFS pointer, or null for a non-LFS file. */
  sha256: string | null;
}

/** Ollama's default and then what llama.cpp users reach for, smallest sensible first. */
export const QUANT_PREFERENCE = ['Q4_K_M', 'Q4_K_S', 'Q5_K_M', 'Q5_K_S', 'Q4_0', 'IQ4_XS', 'IQ4_NL', 'Q6_K', 'Q8_0', 'Q3_K_M', 'Q3_K_L', 'Q2_K', 'BF16', 'F16', 'F32'];

/** Listing bodies are a few KB per file; this bounds a hostile one. */
const MAX_LISTING_BYTES = 8 * 1024 * 1024;
const MAX_LISTING_PAGES = 20;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Matches a quant label as a whole token of a file stem (`-Q4_K_M.`, not `Q4_K` in `Q4_K_M`). */
function quantPattern(quant: string): RegExp {
  return new RegExp(`(^|[-._/])${quant.replace(/[.]/g, '\\.')}($|[-.])`, 'i');
}

/** The quant label a GGUF file name carries (`x-Q4_K_M.gguf` -> `Q4_K_M`), upper case, or null. */
export function quantOf(path: string): string | null {
  const m = /(?:^|[-._/])((?:I?Q[1-8](?:_[0-9A-Z]+)*)|BF16|F16|F32)(?=$|[-.])/i.exec(path.replace(/\.gguf$/i, ''));
  return m ? m[1]!.toUpperCase() : null;
}

async function readJson(res: import('node:http').IncomingMessage, what: string): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > MAX_LISTING_BYTES) {
      res.destroy();
      throw new InferFluxError('download_failed', `${what} is larger than ${MAX_LISTING_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new InferFluxError('download_failed', `${what} is not JSON`);
  }
}

function nextLink(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header.join(',') : header;
  const m = value ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(value) : null;
  return m ? m[1]! : null;
}

export function repoApiUrl(hub: URL, owner: string, repo: string): URL {
  return new URL(`api/models/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/tree/main?recursive=true`, withSlash(hub));
}

export function resolveUrl(hub: URL, owner: string, repo: string, path: string): URL {
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return new URL(`${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/resolve/main/${encoded}`, withSlash(hub));
}

function withSlash(hub: URL): URL {
  return hub.href.endsWith('/') ? hub : new URL(`${hub.href}/`);
}

/**
 * Every file of the repository (hostile names are refused here, before anything uses them). The
 * credential's token goes to the hub's origin only.
 */
export async function listRepo(policy: NetPolicy, hub: URL, owner: string, repo: string, signal?: AbortSignal, credential: OriginCredential = { origin: hub.origin, token: null }): Promise<HubFile[]> {
  const files: HubFile[] = [];
  let url: URL | null = repoApiUrl(hub, owner, repo);
  for (let page = 0; url !== null; page++) {
    if (page >= MAX_LISTING_PAGES) throw new InferFluxError('download_failed', `the listing of ${owner}/${repo} has more than ${MAX_LISTING_PAGES} pages`);
    const got = await safeGet(policy, url, { accept: 'application/json' }, signal, credential);
    const res = got.res;
    const status = res.statusCode ?? 0;
    if ((status === 401 || status === 403) && got.url.origin === credential.origin) {
      res.resume();
      throw hubAccessDenied(credential, status, `the file listing of ${owner}/${repo}`);
    }
    if (status === 404) {
      res.resume();
      throw new InferFluxError('model_not_found', `${owner}/${repo} does not exist on ${hub.origin}`, { param: 'model' });
    }
    if (status !== 200) {
      res.resume();
      throw new InferFluxError('download_failed', `${hub.origin} answered ${status} to the file listing of ${owner}/${repo}`);
    }
    const body = await readJson(res, `the file listing of ${owner}/${repo}`);
    if (!Array.isArray(body)) throw new InferFluxError('download_failed', `the file listing of ${owner}/${repo} is not a JSON array`);
    for (const e of body as Record<string, unknown>[]) {
      if (e === null || typeof e !== 'object' || e.type !== 'file' || typeof e.path !== 'string') continue;
      const lfs = e.lfs as { oid?: unknown; size?: unknown } | undefined;
      const size = typeof lfs?.size === 'number' ? lfs.size : e.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) continue;
      const oid = typeof lfs?.oid === 'string' ? lfs.oid.toLowerCase().replace(/^sha256:/, '') : null;
      files.push({ path: e.path, size, sha256: oid !== null && SHA256_HEX.test(oid) ? oid : null });
    }
    const next = nextLink(res.headers.link);
    url = next === null ? null : new URL(next, url);
  }
  return files;
}

/** Split GGUFs (`-00001-of-00003.gguf`) need every part; this build pulls single files. */
const SPLIT = /-\d{5}-of-\d{5}\.gguf$/i;

/**
 * The GGUF for `quant` (case-insensitive), or by `QUANT_PREFERENCE` when none is asked for. A
 * missing quant is an error that lists what the repository has. The chosen path is checked.
 */
export function pickGguf(files: readonly HubFile[], quant: string | null, repoName: string): HubFile {
  // Projector files (mmproj) are companions of vision models, not models.
  const ggufs = files.filter((f) => /\.gguf$/i.test(f.path) && !/mmproj/i.test(f.path));
  if (ggufs.length === 0) throw new InferFluxError('model_not_found', `${repoName} has no .gguf file`, { param: 'model' });
  const available = [...new Set(ggufs.map((f) => quantOf(f.path) ?? f.path))].sort();
  const firstOf = (matches: HubFile[]): HubFile | undefined => {
    const single = matches.filter((f) => !SPLIT.test(f.path));
    if (single.length === 0 && matches.length > 0) {
      throw new InferFluxError('invalid_request', `${repoName}: ${matches[0]!.path} is a split GGUF (several parts); this server pulls single-file GGUFs only`, { param: 'model' });
    }
    // Shallowest path first, then by name: the repository's main file before copies in folders.
    return single.sort((a, b) => a.path.split('/').length - b.path.split('/').length || a.path.localeCompare(b.path))[0];
  };
  let chosen: HubFile | undefined;
  if (quant !== null) {
    chosen = firstOf(ggufs.filter((f) => quantPattern(quant).test(f.path.replace(/\.gguf$/i, ''))));
    if (!chosen) throw new InferFluxError('model_not_found', `${repoName} has no GGUF for quant ${quant}; available: ${available.join(', ')}`, { param: 'model' });
  } else {
    for (const q of QUANT_PREFERENCE) {
      chosen = firstOf(ggufs.filter((f) => quantOf(f.path) === q));
      if (chosen) break;
    }
    chosen ??= ggufs.length === 1 ? firstOf(ggufs) : undefined;
    if (!chosen) throw new InferFluxError('model_not_found', `${repoName} has several GGUFs and none in the default order; name one with :QUANT, available: ${available.join(', ')}`, { param: 'model' });
  }
  checkRepoFilePath(chosen.path);
  return chosen;
}
