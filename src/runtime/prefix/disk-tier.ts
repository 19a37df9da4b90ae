/**
 * The NVMe tier of the prefix cache: snapshots spilled from host memory to
 * `runtime.nvme_offload.path` (`INFERFLUX_NVME_OFFLOAD_PATH`), with an index that survives
 * restarts.
 *
 * Writes never block the engine. `spill()` is synchronous and only enqueues: at most `workers`
 * writes run at once (`runtime.nvme_offload.workers`, `INFERFLUX_NVME_WORKERS`) and at most
 * `queueDepth` wait behind them (`.queue_depth`, `INFERFLUX_NVME_QUEUE_DEPTH`); anything more is
 * dropped and counted. A queued or in-flight snapshot can already be `load()`ed (served from the
 * queued bytes). Checksums are computed in 4 MiB slices with a yield between slices, so a
 * 200 MB snapshot never holds the thread for more than a few milliseconds at a time.
 *
 * Files: `<dir>/<snapshotId>-<gen>.kv`, written to a `.tmp` name and renamed into place, so a
 * reader never sees a torn file. No fsync by default: the checksum catches a file a crash left
 * empty or short, and a cache may lose entries. Set `fsync` when entries must survive power loss.
 *
 * Index: `<dir>/index.jsonl`, an append-only log of JSON lines, one per change:
 *   {"v":1,"op":"put","id":…,"ns":…,"tok":<base64 of little-endian u32 tokens>,"file":…,
 *    "size":…,"sha256":…,"t":<ms>}
 *   {"v":1,"op":"del","id":…}
 * A `put` is appended only after its file is renamed into place. On open the log is replayed
 * (a torn last line is skipped), entries whose file is missing or has the wrong size are dropped,
 * stray `.tmp` and unindexed `.kv` files are deleted, and the log is rewritten compacted
 * (temp + rename). It is compacted again whenever it holds twice as many lines as live entries.
 * Recovery reads only the index and stats files, so the tier is warm within seconds of a
 * restart; contents are verified lazily, on `load()`.
 *
 * Reads are checksum-verified: a missing, short or corrupted file is dropped from the index and
 * `load()` rejects with a `DiskTierError`; bad bytes are never handed to native code.
 *
 * Budget: `budgetBytes` of files; when a write would exceed it, the least recently used entries
 * (written or loaded; after a restart, in index order) are deleted first.
 *
 * One directory has one owner: give each engine worker its own subdirectory.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, open, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTick } from 'node:timers/promises';
import type { TokenSeq } from './radix-trie.js';
import { snapshotId, type SnapshotId } from './snapshot-key.js';

export const INDEX_FILE = 'index.jsonl';
const DATA_EXT = '.kv';
const TMP_EXT = '.tmp';
const HASH_SLICE = 4 * 1024 * 1024;
const INDEX_VERSION = 1;

export interface DiskTierOptions {
  /** Directory for snapshot files and the index; created if missing. `runtime.nvme_offload.path`. */
  path: string;
  /** Concurrent writes. `runtime.nvme_offload.workers`. Defaults to `2`. */
  workers?: number;
  /** Spills waiting for a writer; beyond this new spills are dropped. Defaults to `64`. */
  queueDepth?: number;
  /** Bytes of snapshot files kept; least recently used go first. Defaults to `68719476736` (64 GiB). */
  budgetBytes?: number;
  /** `fdatasync` each file before its rename. Defaults to `false`. */
  fsync?: boolean;
  /**
   * Called when the tier itself drops an entry the owner may still reference (budget eviction,
   * corrupt or missing file, failed write). Not called for the owner's own `delete()`/`clear()`.
   */
  onRemove?: (id: SnapshotId, reason: DiskRemoveReason) => void;
  /** Clock for the `t` field of index records. Defaults to `Date.now`. */
  now?: () => number;
}

export type DiskRemoveReason = 'budget' | 'corrupt' | 'missing' | 'write_failed';

export type SpillResult =
  /** Accepted; loadable at once, on disk once written. */
  | 'queued'
  /** Already on disk or queued. */
  | 'exists'
  /** Queue full (counted in `stats().dropped`). */
  | 'dropped'
  /** Larger than the whole budget. */
  | 'too_large'
  | 'closed';

/** One snapshot on disk, as the index records it. */
export interface DiskEntry {
  readonly id: SnapshotId;
  readonly ns: string;
  readonly tokens: Uint32Array;
  /** File name inside the tier's directory. */
  readonly file: string;
  readonly size: number;
  /** sha256 of the file's bytes, hex. */
  readonly checksum: string;
  readonly createdAt: number;
}

export interface DiskTierStats {
  files: number;
  bytes: number;
  budgetBytes: number;
  queued: number;
  inFlight: number;
  written: number;
  dropped: number;
  tooLarge: number;
  writeErrors: number;
  indexErrors: number;
  loads: number;
  corrupt: number;
  missing: number;
  evictions: number;
  /** Entries recovered from the index at open. */
  recovered: number;
}

export type DiskTierErrorCode = 'not_found' | 'missing' | 'corrupt' | 'io';

/** A failed `load()`. `code` says why; never match on the message. */
export class DiskTierError extends Error {
  readonly code: DiskTierErrorCode;
  constructor(code: DiskTierErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DiskTierError';
    this.code = code;
  }
}

/** @internal */
interface Job {
  readonly id: SnapshotId;
  readonly ns: string;
  readonly tokens: Uint32Array;
  readonly chunks: readonly Uint8Array[];
  readonly size: number;
  cancelled: boolean;
}

/** sha256 of the chunks, yielding to the event loop between 4 MiB slices. */
async function sha256Chunks(chunks: readonly Uint8Array[]): Promise<string> {
  const h = createHash('sha256');
  for (const c of chunks) {
    for (let off = 0; off < c.length; off += HASH_SLICE) {
      h.update(c.subarray(off, off + HASH_SLICE));
      if (c.length > HASH_SLICE) await nextTick();
    }
  }
  return h.digest('hex');
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) (out.set(c, off), (off += c.length));
  return out;
}

function encodeTokens(t: Uint32Array): string {
  return Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('base64');
}

function decodeTokens(s: string): Uint32Array | null {
  const b = Buffer.from(s, 'base64');
  if (b.length % 4 !== 0) return null;
  const out = new Uint32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

export class DiskTier {
  readonly dir: string;
  readonly workers: number;
  readonly queueDepth: number;
  readonly budgetBytes: number;
  private readonly fsync: boolean;
  private readonly onRemove: ((id: SnapshotId, reason: DiskRemoveReason) => void) | undefined;
  private readonly now: () => number;
  /** Committed entries; Map order is recency order (least recently used first). */
  private readonly index = new Map<SnapshotId, DiskEntry>();
  /** Queued or in-flight spills by id (the latest, uncancelled one). */
  private readonly pending = new Map<SnapshotId, Job>();
  private readonly queue: Job[] = [];
  private inFlight = 0;
  /** Running writes and background unlinks, for `drain()`. */
  private readonly active = new Set<Promise<unknown>>();
  private logChain: Promise<void> = Promise.resolve();
  private logLines = 0;
  private bytes = 0;
  private gen = 0;
  private closed = false;
  private readonly counters = {
    written: 0, dropped: 0, tooLarge: 0, writeErrors: 0, indexErrors: 0,
    loads: 0, corrupt: 0, missing: 0, evictions: 0, recovered: 0,
  };

  /** Open (or create) a tier directory and recover its index. */
  static async open(opts: DiskTierOptions): Promise<DiskTier> {
    const tier = new DiskTier(opts);
    await tier.recover();
    return tier;
  }

  private constructor(opts: DiskTierOptions) {
    const workers = opts.workers ?? 2;
    const queueDepth = opts.queueDepth ?? 64;
    const budget = opts.budgetBytes ?? 64 * 1024 ** 3;
    if (!Number.isSafeInteger(workers) || workers < 1) throw new RangeError('workers must be an integer >= 1');
    if (!Number.isSafeInteger(queueDepth) || queueDepth < 0) throw new RangeError('queueDepth must be an integer >= 0');
    if (!(budget >= 0)) throw new RangeError('budgetBytes must be >= 0');
    this.dir = opts.path;
    this.workers = workers;
    this.queueDepth = queueDepth;
    this.budgetBytes = budget;
    this.fsync = opts.fsync ?? false;
    this.onRemove = opts.onRemove;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Queue a snapshot for writing; never blocks, never throws for a full queue. The tier keeps
   * references to `data` until written: pass bytes nobody will mutate (not pool pages).
   */
  spill(ns: string, tokens: TokenSeq, data: Uint8Array | readonly Uint8Array[], id?: SnapshotId): SpillResult {
    if (this.closed) return 'closed';
    const key = Uint32Array.from(tokens);
    const sid = id ?? snapshotId(ns, key);
    if (this.index.has(sid) || this.pending.has(sid)) return 'exists';
    const chunks = data instanceof Uint8Array ? [data] : [...data];
    let size = 0;
    for (const c of chunks) size += c.length;
    if (size > this.budgetBytes) {
      this.counters.tooLarge++;
      return 'too_large';
    }
    if (this.inFlight >= this.workers && this.queue.length >= this.queueDepth) {
      this.counters.dropped++;
      return 'dropped';
    }
    const job: Job = { id: sid, ns, tokens: key, chunks, size, cancelled: false };
    this.pending.set(sid, job);
    if (this.inFlight < this.workers) this.start(job);
    else this.queue.push(job);
    return 'queued';
  }

  /** Whether `id` is on disk or queued for it. */
  has(id: SnapshotId): boolean {
    return this.index.has(id) || this.pending.has(id);
  }

  /** The committed index entry for `id`, if any. */
  get(id: SnapshotId): DiskEntry | undefined {
    return this.index.get(id);
  }

  /** Committed entries, least recently used first. */
  entries(): IterableIterator<DiskEntry> {
    return this.index.values();
  }

  /**
   * The snapshot's bytes: from the write queue if still pending, else read and verified.
   * Rejects with `DiskTierError` (`not_found`, `missing`, `corrupt`, `io`); a missing or corrupt
   * file is dropped from the index first (and `onRemove` is called). Do not mutate the result.
   */
  async load(id: SnapshotId): Promise<Uint8Array> {
    const job = this.pending.get(id);
    if (job !== undefined) {
      this.counters.loads++;
      return concat(job.chunks, job.size);
    }
    const e = this.index.get(id);
    if (e === undefined) throw new DiskTierError('not_found', `no disk snapshot ${id}`);
    let data: Buffer;
    try {
      data = await readFile(join(this.dir, e.file));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) {
        this.counters.missing++;
        this.dropIfCurrent(e, 'missing');
        throw new DiskTierError('missing', `snapshot file ${e.file} is missing`, err);
      }
      throw new DiskTierError('io', `reading ${e.file} failed`, err);
    }
    if (data.length !== e.size || (await sha256Chunks([data])) !== e.checksum) {
      this.counters.corrupt++;
      this.dropIfCurrent(e, 'corrupt');
      throw new DiskTierError('corrupt', `snapshot file ${e.file} failed its checksum`);
    }
    if (this.index.get(id) === e) (this.index.delete(id), this.index.set(id, e));
    this.counters.loads++;
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  }

  /** Forget a snapshot: cancel its write or delete its file. Returns whether it existed. */
  delete(id: SnapshotId): boolean {
    let found = false;
    const job = this.pending.get(id);
    if (job !== undefined) {
      found = true;
      job.cancelled = true;
      this.pending.delete(id);
      const at = this.queue.indexOf(job);
      if (at >= 0) this.queue.splice(at, 1);
    }
    const e = this.index.get(id);
    if (e !== undefined) {
      found = true;
      this.removeEntry(e);
    }
    return found;
  }

  /** Delete every snapshot (whose namespace passes `filter`, when given). Returns the count. */
  clear(filter?: (ns: string) => boolean): number {
    const ids = new Set<SnapshotId>();
    for (const j of this.pending.values()) if (!filter || filter(j.ns)) ids.add(j.id);
    for (const e of this.index.values()) if (!filter || filter(e.ns)) ids.add(e.id);
    for (const id of ids) this.delete(id);
    return ids.size;
  }

  /** Resolves when every queued write, file deletion and index append so far has finished. */
  async drain(): Promise<void> {
    while (this.active.size > 0) await Promise.allSettled([...this.active]);
    await this.logChain;
  }

  /** Stop accepting spills and finish pending work. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
  }

  stats(): DiskTierStats {
    return {
      files: this.index.size,
      bytes: this.bytes,
      budgetBytes: this.budgetBytes,
      queued: this.queue.length,
      inFlight: this.inFlight,
      ...this.counters,
    };
  }

  private start(job: Job): void {
    this.inFlight++;
    const p: Promise<void> = this.write(job)
      .catch(() => {
        this.counters.writeErrors++;
        if (this.pending.get(job.id) === job) {
          this.pending.delete(job.id);
          this.onRemove?.(job.id, 'write_failed');
        }
      })
      .finally(() => {
        this.inFlight--;
        this.active.delete(p);
        const next = this.queue.shift();
        if (next !== undefined) this.start(next);
      });
    this.active.add(p);
  }

  private async write(job: Job): Promise<void> {
    const checksum = await sha256Chunks(job.chunks);
    if (job.cancelled) return;
    const file = `${job.id}-${this.now().toString(36)}${(this.gen++).toString(36)}${DATA_EXT}`;
    const tmp = join(this.dir, `${file}${TMP_EXT}`);
    const final = join(this.dir, file);
    try {
      const fh = await open(tmp, 'w');
      try {
        for (const c of job.chunks) {
          let off = 0;
          while (off < c.length) off += (await fh.write(c, off, c.length - off)).bytesWritten;
        }
        if (this.fsync) await fh.datasync();
      } finally {
        await fh.close();
      }
      if (job.cancelled) throw new Error('cancelled');
      await rename(tmp, final);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      if (job.cancelled) return;
      throw err;
    }
    if (job.cancelled) {
      await unlink(final).catch(() => undefined);
      return;
    }
    this.pending.delete(job.id);
    const entry: DiskEntry = {
      id: job.id, ns: job.ns, tokens: job.tokens, file, size: job.size, checksum, createdAt: this.now(),
    };
    this.index.set(entry.id, entry);
    this.bytes += entry.size;
    this.counters.written++;
    this.appendLog(this.putRecord(entry));
    this.enforceBudget(entry.id);
  }

  private enforceBudget(keep?: SnapshotId): void {
    for (const e of this.index.values()) {
      if (this.bytes <= this.budgetBytes) return;
      if (e.id === keep) continue;
      this.counters.evictions++;
      this.removeEntry(e);
      this.onRemove?.(e.id, 'budget');
    }
  }

  private dropIfCurrent(e: DiskEntry, reason: DiskRemoveReason): void {
    if (this.index.get(e.id) !== e) return;
    this.removeEntry(e);
    this.onRemove?.(e.id, reason);
  }

  private removeEntry(e: DiskEntry): void {
    this.index.delete(e.id);
    this.bytes -= e.size;
    this.background(unlink(join(this.dir, e.file)).catch(() => undefined));
    this.appendLog({ v: INDEX_VERSION, op: 'del', id: e.id });
  }

  private background(p: Promise<unknown>): void {
    const tracked: Promise<unknown> = p.finally(() => this.active.delete(tracked));
    this.active.add(tracked);
  }

  private putRecord(e: DiskEntry): object {
    return {
      v: INDEX_VERSION, op: 'put', id: e.id, ns: e.ns, tok: encodeTokens(e.tokens),
      file: e.file, size: e.size, sha256: e.checksum, t: e.createdAt,
    };
  }

  /** Appends run one at a time, in order; a compaction is queued when the log has grown. */
  private appendLog(rec: object): void {
    this.logLines++;
    const line = JSON.stringify(rec) + '\n';
    this.logChain = this.logChain
      .then(() => appendFile(join(this.dir, INDEX_FILE), line))
      .catch(() => void this.counters.indexErrors++);
    if (this.logLines > 2 * this.index.size + 64) {
      this.logLines = this.index.size;
      this.logChain = this.logChain.then(() => this.rewriteIndex()).catch(() => void this.counters.indexErrors++);
    }
  }

  /** Write the live index as a fresh log (temp + rename). Runs on the log chain. */
  private async rewriteIndex(): Promise<void> {
    const lines: string[] = [];
    for (const e of this.index.values()) lines.push(JSON.stringify(this.putRecord(e)));
    const tmp = join(this.dir, `${INDEX_FILE}${TMP_EXT}`);
    await writeFile(tmp, lines.length > 0 ? lines.join('\n') + '\n' : '');
    await rename(tmp, join(this.dir, INDEX_FILE));
  }

  private async recover(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    let text = '';
    try {
      text = await readFile(join(this.dir, INDEX_FILE), 'utf8');
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    const found = new Map<SnapshotId, DiskEntry>();
    for (const line of text.split('\n')) {
      if (line.length === 0) continue;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.counters.indexErrors++; // a torn last line after a crash
        continue;
      }
      if (rec.v !== INDEX_VERSION || typeof rec.id !== 'string') continue;
      const id = rec.id as SnapshotId;
      if (rec.op === 'del') {
        found.delete(id);
        continue;
      }
      const tokens = typeof rec.tok === 'string' ? decodeTokens(rec.tok) : null;
      if (
        rec.op !== 'put' || tokens === null || typeof rec.ns !== 'string' || typeof rec.file !== 'string' ||
        rec.file.includes('/') || typeof rec.size !== 'number' || typeof rec.sha256 !== 'string'
      ) {
        this.counters.indexErrors++;
        continue;
      }
      found.delete(id);
      found.set(id, {
        id, ns: rec.ns, tokens, file: rec.file, size: rec.size, checksum: rec.sha256,
        createdAt: typeof rec.t === 'number' ? rec.t : 0,
      });
    }

    const names = new Set(await readdir(this.dir));
    const referenced = new Set<string>();
    const checks = [...found.values()].map(async (e) => {
      if (!names.has(e.file)) return null;
      try {
        return (await stat(join(this.dir, e.file))).size === e.size ? e : null;
      } catch {
        return null;
      }
    });
    for (const e of await Promise.all(checks)) {
      if (e === null) {
        this.counters.missing++;
        continue;
      }
      this.index.set(e.id, e);
      this.bytes += e.size;
      referenced.add(e.file);
    }
    this.counters.recovered = this.index.size;
    // Leftovers of interrupted writes, and files whose index line never made it to disk.
    for (const name of names) {
      if (name.endsWith(TMP_EXT) || (name.endsWith(DATA_EXT) && !referenced.has(name))) {
        await unlink(join(this.dir, name)).catch(() => undefined);
      }
    }
    this.logLines = this.index.size;
    await this.rewriteIndex();
    this.enforceBudget();
  }
}
