/**
 * One file downloaded to a `.partial` name, resumably: a partial file left by an interrupted
 * attempt (this run's or an earlier one's) is continued with `Range: bytes=N-`, and an attempt cut
 * off mid-body is retried (a bounded number of times) from where it stopped. A body longer than
 * the size announced (by the hub's listing or the response) is refused and its partial removed;
 * a shorter one is an interrupted attempt. The caller verifies the digest and renames.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat, truncate } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { InferFluxError } from '../../errors.js';
import { hubAccessDenied, safeGet, type NetPolicy, type OriginCredential } from './safe-get.js';

export interface DownloadProgress {
  /** Bytes of the whole file, when known. */
  total: number | null;
  /** Bytes on disk so far (resumed bytes included). */
  completed: number;
  /** Bytes per second over the last few seconds of this run. */
  bytesPerSecond: number;
  /** Seconds left at that speed, when the total is known and bytes are flowing. */
  etaSeconds: number | null;
}

export interface DownloadOptions {
  policy: NetPolicy;
  url: URL;
  partial: string;
  /** Size the file must have (from the hub's listing), or null to trust the response. */
  expectedSize: number | null;
  headers?: Record<string, string>;
  /** The hub's origin and token: the token goes to that origin only, never to a redirect target elsewhere. */
  credential?: OriginCredential | null;
  signal?: AbortSignal;
  /** Attempts per download (the first plus resumes after an interruption). Defaults to `3`. */
  attempts?: number;
  onProgress?: (p: DownloadProgress) => void;
  /** Called when an attempt starts; `offset` > 0 means it resumes. */
  onAttempt?: (attempt: number, offset: number) => void;
}

/** Hard cap when neither the listing nor the server says how big the file is. */
const MAX_UNKNOWN_BYTES = 512 * 1024 ** 3;
const PROGRESS_EVERY_MS = 200;

/** Speed over a sliding window of (time, bytes) samples. */
class RateMeter {
  private samples: [number, number][] = [];
  add(now: number, bytes: number): number {
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0]![0] > 5000) this.samples.shift();
    const [t0, b0] = this.samples[0]!;
    return now > t0 ? ((bytes - b0) * 1000) / (now - t0) : 0;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** `bytes 100-199/1000` -> {start: 100, total: 1000}. */
function contentRange(value: string | undefined): { start: number; total: number | null } | null {
  const m = value ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim()) : null;
  return m ? { start: Number(m[1]), total: m[3] === '*' ? null : Number(m[3]) } : null;
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Downloads into `partial`; resolves to the file's size once every byte is there. */
export async function downloadResumable(o: DownloadOptions): Promise<{ size: number }> {
  const attempts = o.attempts ?? 3;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let offset = await sizeOf(o.partial);
    if (o.expectedSize !== null && offset > o.expectedSize) {
      await truncate(o.partial, 0);
      offset = 0;
    }
    if (o.expectedSize !== null && offset === o.expectedSize && offset > 0) return { size: offset };
    o.onAttempt?.(attempt, offset);
    try {
      const done = await attemptOnce(o, offset);
      if (done !== null) return { size: done };
      lastError = new InferFluxError('download_failed', `${o.url.host}: the download stopped before the end of the file`);
    } catch (err) {
      // Refusals, oversize bodies and HTTP errors are final; a cut connection is worth a resume.
      if (!(err instanceof InferFluxError && err.code === 'download_failed' && (err as { resumable?: boolean }).resumable)) throw err;
      if (o.signal?.aborted) throw err;
      lastError = err;
    }
    if (attempt < attempts) await sleep(100 * attempt, undefined, { signal: o.signal }).catch(() => undefined);
  }
  throw lastError;
}

function resumable(message: string, cause?: unknown): InferFluxError {
  return Object.assign(new InferFluxError('download_failed', message, { cause }), { resumable: true });
}

/** One request; resolves to the final size when the file is complete, null when it was cut short. */
async function attemptOnce(o: DownloadOptions, offset: number): Promise<number | null> {
  const headers = { ...o.headers, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) };
  let res: IncomingMessage;
  let answered: URL;
  try {
    ({ res, url: answered } = await safeGet(o.policy, o.url, headers, o.signal, o.credential ?? null));
  } catch (err) {
    if (err instanceof InferFluxError && err.code === 'download_failed' && !o.signal?.aborted) throw resumable(err.message, err);
    throw err;
  }
  const status = res.statusCode ?? 0;
  let start = offset;
  let total: number | null = o.expectedSize;
  if (status === 206) {
    const range = contentRange(res.headers['content-range']);
    if (!range || range.start !== offset) {
      // A range we did not ask for: start over rather than splice mismatched bytes.
      res.resume();
      await truncate(o.partial, 0);
      throw resumable(`${o.url.host} answered a range request with ${res.headers['content-range'] ?? 'no Content-Range'}; restarting`);
    }
    total ??= range.total;
  } else if (status === 200) {
    start = 0;
    const length = Number(res.headers['content-length']);
    if (total === null && Number.isSafeInteger(length) && res.headers['content-length'] !== undefined) total = length;
  } else if (status === 416 && offset > 0) {
    // The server says our partial already covers the file; the digest check decides.
    res.resume();
    if (o.expectedSize === null) return offset;
    await truncate(o.partial, 0);
    throw resumable(`${o.url.host} refused the range of a partial file larger than the file; restarting`);
  } else {
    res.resume();
    if ((status === 401 || status === 403) && o.credential && answered.origin === o.credential.origin) throw hubAccessDenied(o.credential, status, o.url.pathname);
    if (status === 404) throw new InferFluxError('model_not_found', `${o.url.host} has no such file (HTTP 404): ${o.url.pathname}`, { param: 'model' });
    throw new InferFluxError('download_failed', `${o.url.host} answered HTTP ${status} to ${o.url.pathname}`);
  }
  const limit = total ?? MAX_UNKNOWN_BYTES;
  let completed = start;
  const meter = new RateMeter();
  let lastReport = 0;
  const report = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastReport < PROGRESS_EVERY_MS) return;
    lastReport = now;
    const bytesPerSecond = meter.add(now, completed);
    const etaSeconds = total !== null && bytesPerSecond > 0 ? (total - completed) / bytesPerSecond : null;
    o.onProgress?.({ total, completed, bytesPerSecond, etaSeconds });
  };
  report(true);
  let oversize = false;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      completed += chunk.length;
      if (completed > limit) {
        oversize = true;
        return cb(new InferFluxError('download_failed', `${o.url.host} sent more than the ${limit} bytes announced for ${o.url.pathname}`));
      }
      report(false);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(res, counter, createWriteStream(o.partial, { flags: start > 0 ? 'a' : 'w' }), { signal: o.signal });
  } catch (err) {
    if (oversize) {
      await rm(o.partial, { force: true });
      throw err;
    }
    if (o.signal?.aborted) throw new InferFluxError('download_failed', 'the pull was cancelled; the partial file is kept for the next pull', { cause: err });
    throw resumable(`${o.url.host}: the connection broke after ${completed} bytes (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err);
  }
  report(true);
  if (total !== null && completed < total) return null;
  return completed;
}
