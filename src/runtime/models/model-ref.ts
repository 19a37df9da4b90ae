/**
 * What a user may ask to pull, and what a stored model may be called. Every string here comes from
 * a user or a hub listing, so each is checked before it becomes part of a URL or a file name:
 * `..`, absolute paths, drive letters (`C:`), UNC names (`\\host\share`) and control characters
 * are refused (huggingface_hub fixes #1429 and #4540, Ollama CVE-2024-37032).
 *
 *   owner/repo[:quant]            a hub repository; the GGUF is picked from its file listing
 *   hf.co/owner/repo[:quant]      the same (Ollama's spelling; `huggingface.co/` too)
 *   hf://owner/repo/path/f.gguf   one file of a hub repository
 *   https://host/path/f.gguf      a plain URL (http:// only to hosts in pull.allowed_private_hosts)
 */
import { InferFluxError } from '../../errors.js';

export type ModelRef =
  | { kind: 'repo'; owner: string; repo: string; quant: string | null; name: string }
  | { kind: 'file'; owner: string; repo: string; file: string; name: string }
  | { kind: 'url'; url: URL; name: string };

/** Hub owner and repository names: what the hub itself allows, and never `.`/`..`. */
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
/** A quant label (`Q4_K_M`, `iq3_xxs`, `f16`) or an Ollama tag. */
const QUANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** One segment of a stored model's name; `:tag` at the end. */
const NAME_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MAX_NAME = 256;

export const REF_HELP = 'a model reference is owner/repo[:quant], hf://owner/repo/file.gguf or an https:// URL';

function refused(message: string, param = 'model'): InferFluxError {
  return new InferFluxError('invalid_request', message, { param });
}

function checkRepoPart(part: string, what: string, ref: string): void {
  if (!REPO_PART.test(part) || part.includes('..')) throw refused(`${what} ${JSON.stringify(part)} in ${JSON.stringify(ref)} is not a valid hub name; ${REF_HELP}`);
}

/**
 * A file path inside a hub repository (from the user or the hub's listing): relative, `/`
 * separated, no `.`/`..` segment, no drive letter, backslash, NUL or control character. Returns it.
 */
export function checkRepoFilePath(path: string): string {
  const bad = (why: string) => refused(`refusing file name ${JSON.stringify(path)} from the hub: ${why}`);
  if (path.length === 0 || path.length > 1024) throw bad('empty or longer than 1024 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) throw bad('it contains control characters');
  if (path.includes('\\')) throw bad('it contains a backslash (a Windows or UNC path)');
  if (path.startsWith('/')) throw bad('it is an absolute path');
  if (/^[A-Za-z]:/.test(path)) throw bad('it starts with a drive letter');
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw bad('it has an empty, "." or ".." segment');
  }
  return path;
}

/** The file name without directories and `.gguf`: `sub/Llama-Q4_K_M.gguf` -> `Llama-Q4_K_M`. */
export function fileStem(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1).replace(/\.gguf$/i, '');
}

/**
 * A stored model's name: `/`-separated segments (at most 4) and an optional `:tag`, each segment
 * starting with a letter or digit, so no name is `.`/`..`, absolute or a drive. `:latest` is the
 * same model as no tag (Ollama's rule). Returns the normalised name.
 */
export function checkModelName(raw: string, param = 'model'): string {
  const name = raw.replace(/:latest$/, '');
  const colon = name.lastIndexOf(':');
  const path = colon < 0 ? name : name.slice(0, colon);
  const tag = colon < 0 ? null : name.slice(colon + 1);
  const segments = path.split('/');
  const ok =
    name.length > 0 &&
    name.length <= MAX_NAME &&
    segments.length <= 4 &&
    segments.every((s) => NAME_SEGMENT.test(s)) &&
    (tag === null || NAME_SEGMENT.test(tag));
  if (!ok) {
    throw refused(
      `${JSON.stringify(raw)} is not a valid model name: up to 4 "/"-separated parts and an optional ":tag", each starting with a letter or digit and made of letters, digits, ".", "_" and "-"`,
      param,
    );
  }
  return name;
}

/** A name for a URL's model: the file stem with anything outside the name alphabet replaced. */
function nameFromUrl(url: URL): string {
  const stem = fileStem(decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1)));
  const clean = stem.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 128);
  return clean === '' ? 'model' : clean;
}

/** Parses what `inferctl pull` or `POST /api/pull` was given. `name` overrides the stored name. */
export function parseModelRef(raw: string, name?: string): ModelRef {
  const ref = raw.trim();
  const named = (fallback: string) => checkModelName(name ?? fallback, name === undefined ? 'model' : 'name');
  if (/^https?:\/\//i.test(ref)) {
    let url: URL;
    try {
      url = new URL(ref);
    } catch {
      throw refused(`${JSON.stringify(ref)} is not a URL; ${REF_HELP}`);
    }
    if (url.username || url.password) throw refused('a model URL must not carry credentials');
    return { kind: 'url', url, name: named(nameFromUrl(url)) };
  }
  if (ref.startsWith('hf://')) {
    const rest = ref.slice('hf://'.length);
    const [owner = '', repo = '', ...file] = rest.split('/');
    checkRepoPart(owner, 'owner', ref);
    checkRepoPart(repo, 'repository', ref);
    const path = checkRepoFilePath(file.join('/'));
    if (!/\.gguf$/i.test(path)) throw refused(`hf:// names one .gguf file: ${JSON.stringify(ref)}`);
    return { kind: 'file', owner, repo, file: path, name: named(`${owner}/${repo}:${fileStem(path).slice(0, 128)}`) };
  }
  const bare = ref.replace(/^(hf\.co|huggingface\.co)\//i, '');
  const colon = bare.indexOf(':');
  const repoPath = colon < 0 ? bare : bare.slice(0, colon);
  const quant = colon < 0 ? null : bare.slice(colon + 1);
  const parts = repoPath.split('/');
  if (parts.length !== 2) {
    throw refused(`${JSON.stringify(ref)} names no hub repository (InferFlux pulls GGUF files from a Hugging Face-style hub, not Ollama's library); ${REF_HELP}`);
  }
  const [owner, repo] = parts as [string, string];
  checkRepoPart(owner, 'owner', ref);
  checkRepoPart(repo, 'repository', ref);
  if (quant !== null && (!QUANT.test(quant) || quant.includes('..'))) throw refused(`${JSON.stringify(quant)} is not a quantisation label such as Q4_K_M`);
  const keep = ref.slice(0, ref.length - bare.length); // `hf.co/` stays in the name, as Ollama keeps it
  return { kind: 'repo', owner, repo, quant, name: named(`${keep}${owner}/${repo}${quant === null || quant === 'latest' ? '' : `:${quant}`}`) };
}
