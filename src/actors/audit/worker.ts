/**
 * Audit writer actor: appends one JSON line per audit event to a file, batched and fsync'd.
 *
 * Ports: hot `AuditFrame`s arrive on `parentPort` (msgpackr bytes, buffer transferred) and acks go
 * back on it; control (`init`, `flush`, `close`) is comlink RPC on the port passed in `workerData`.
 *
 * Durability contract: events are counted in arrival order and acknowledged by count
 * (`{acked: n}`) only after the `fdatasync` that covers them, so the client can keep every
 * unacknowledged event and re-send it if this thread dies. A batch closes after `batchMs`
 * (`audit.flush_interval_ms`, default 20 ms) or 256 events, whichever comes first, and is written
 * with one `write` (two when a rotation splits it). A `kill -9` loses at most the batch being
 * gathered or written: the lines of the last `batchMs` plus one fsync.
 *
 * Tamper evidence: every line carries `seq` and `prev` (chain.ts). The chain is computed at write
 * time, in file order, and continues across rotation and restarts: on open the writer reads the
 * last line of `audit.log` (or of `audit.log.1` when a rotation left `audit.log` empty). A torn
 * last line (a crash mid-write; never acknowledged, so the client still had it) is cut off, and a
 * `lifecycle` line saying so is chained in its place.
 *
 * Truncation evidence: after each durable batch the writer rewrites `<log>.checkpoint` (seq and
 * hash of the last line, HMAC-signed when a key is given; checkpoint.ts). On open, a checkpoint
 * ahead of the log's last line (lines cut off the end) or naming a different last line makes the
 * writer continue the chain from the checkpoint, not from the shortened log, so the gap stays
 * visible to `audit verify` instead of being papered over by the next lines.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as Comlink from 'comlink';
import nodeAdapter from 'comlink/dist/umd/node-adapter.js';
import { PROTOCOL_VERSION, T, unpack, type AuditEvent, type AuditFrame, type WorkerHello } from '../protocol.js';
import { chainLine, genesisState, stateAfter, type ChainState } from '../../audit/chain.js';
import { checkpointPathFor, CheckpointError, decodeCheckpoint, encodeCheckpoint, readCheckpointText, writeCheckpoint } from '../../audit/checkpoint.js';

/**
 * The UMD adapter sets `module.exports = nodeEndpoint`, but its d.ts declares `export default`, so
 * under NodeNext TypeScript sees the function one level deeper than Node does at runtime.
 */
const nodeEndpoint = nodeAdapter as unknown as typeof nodeAdapter.default;

export interface AuditWriterOptions {
  /** File the JSON lines are appended to; parent directories are created. */
  path: string;
  /** Rotate before a write would grow the file past this many bytes. Defaults to 64 MiB. */
  maxBytes?: number;
  /** Rotated files kept (`path.1` newest … `path.keep` oldest). Defaults to `5`. */
  keep?: number;
  /** How long a batch gathers events before its write + fsync (`audit.flush_interval_ms`). Defaults to `20`. */
  batchMs?: number;
  /** HMAC key for the checkpoint (checkpoint.ts `checkpointKey`); null writes it unsigned. Defaults to `null`. */
  checkpointKey?: Uint8Array | null;
}

/** Control surface exposed over comlink. */
export interface AuditWriterApi {
  init(opts: AuditWriterOptions): Promise<WorkerHello>;
  /** Resolves once every event received before the call is written and fsync'd. */
  flush(): Promise<{ written: number }>;
  close(): Promise<void>;
}

/** worker -> client on the hot port. */
export type AuditAck = { acked: number } | { writeError: string };

export interface AuditWorkerData {
  control: MessagePort;
}

const DEFAULT_BATCH_MS = 20;
const BATCH_EVENTS = 256;
/** Pause before retrying a failed write (disk full, EIO): the batch stays pending, never dropped. */
const RETRY_MS = 500;

/** Reads the last complete line of a file (walking back in chunks), and whether a torn tail follows it. */
async function readTail(path: string): Promise<{ last: string | null; completeBytes: number; size: number } | null> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    const CHUNK = 64 * 1024;
    let end = size;
    let tail = Buffer.alloc(0);
    let completeBytes = -1;
    // Find the last '\n' (end of the last complete line), then the one before it.
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const buf = Buffer.alloc(end - start);
      await fh.read(buf, 0, buf.length, start);
      tail = Buffer.concat([buf, tail]);
      end = start;
      if (completeBytes < 0) {
        const nl = tail.lastIndexOf(0x0a);
        if (nl < 0) continue;
        completeBytes = end + nl + 1;
      }
      const lineEnd = completeBytes - end - 1;
      // (A negative fromIndex would count from the end: an empty last line has no line before it here.)
      const before = lineEnd > 0 ? tail.lastIndexOf(0x0a, lineEnd - 1) : -1;
      if (before >= 0 || end === 0) return { last: tail.subarray(before + 1, lineEnd).toString('utf8'), completeBytes, size };
    }
    return { last: null, completeBytes: Math.max(0, completeBytes), size };
  } finally {
    await fh.close();
  }
}

class AuditFile {
  private fh: FileHandle | null = null;
  private size = 0;
  private chain: ChainState | null = null;
  /** Notes for the log itself (e.g. a torn tail cut off at open), chained before the next batch. */
  private notes: AuditEvent[] = [];

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly keep: number,
    private readonly checkpointKey: Uint8Array | null,
  ) {}

  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    if (!this.chain) this.chain = await this.recoverChain();
    this.fh = await open(this.path, 'a');
    this.size = (await this.fh.stat()).size;
  }

  /** Where the chain stands on disk: after the last line of audit.log, else of audit.log.1, else genesis. */
  private async recoverChain(): Promise<ChainState> {
    const tail = await readTail(this.path);
    if (tail && tail.completeBytes < tail.size) {
      const fh = await open(this.path, 'r+');
      try {
        await fh.truncate(tail.completeBytes);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      this.notes.push({
        ts: new Date().toISOString(),
        event: 'lifecycle',
        decision: 'audit.torn_tail_removed',
        detail: `removed ${tail.size - tail.completeBytes} byte(s) of an incomplete last line left by a crash`,
      });
    }
    let last = tail?.last ?? null;
    if (last === null) last = (await readTail(`${this.path}.1`))?.last ?? null;
    let state = last === null ? genesisState() : stateAfter(last);
    if (state === null) {
      // A last line without chain fields (a log from before the chain, or altered): start a new
      // chain and say so in it, so the verifier's report and this line explain each other.
      this.notes.push({ ts: new Date().toISOString(), event: 'lifecycle', decision: 'audit.chain_restarted', detail: 'the previous last line carries no chain fields' });
      state = genesisState();
    }
    return this.againstCheckpoint(state);
  }

  /** The chain position to continue from, given the checkpoint (see the file header). */
  private async againstCheckpoint(state: ChainState): Promise<ChainState> {
    const text = await readCheckpointText(checkpointPathFor(this.path));
    if (text === null) return state;
    const now = new Date().toISOString();
    try {
      const cp = decodeCheckpoint(text, this.checkpointKey);
      const logLast = state.seq - 1;
      if (cp.seq > logLast || (cp.seq === logLast && cp.hash !== state.prev)) {
        const what = cp.seq > logLast ? `lines seq ${logLast + 1}..${cp.seq} are missing from the end of the log` : `the last line (seq ${cp.seq}) differs from the one checkpointed`;
        this.notes.push({ ts: now, event: 'lifecycle', decision: 'audit.checkpoint_mismatch', detail: `${what}; the chain continues from the checkpoint` });
        return { seq: cp.seq + 1, prev: cp.hash };
      }
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      this.notes.push({ ts: now, event: 'lifecycle', decision: 'audit.checkpoint_invalid', detail: err.message });
    }
    return state;
  }

  /** Records the chain position after the last durable line. */
  private async checkpoint(): Promise<void> {
    const chain = this.chain!;
    if (chain.seq === 0) return;
    const text = encodeCheckpoint({ seq: chain.seq - 1, hash: chain.prev, ts: new Date().toISOString() }, this.checkpointKey);
    await writeCheckpoint(checkpointPathFor(this.path), text);
  }

  /**
   * Chains and writes whole lines (one per non-null entry), rotating between lines so no file
   * outgrows `maxBytes` unless one line does. Resolves with how many entries are durable: all of
   * them, or, when a write fails (disk full, EIO), those of the chunks fsync'd before it. The chain
   * stays at the last durable line, so the retried remainder continues it exactly.
   */
  async append(entries: (AuditEvent | null)[]): Promise<{ done: number; error?: unknown }> {
    let done = 0;
    let wrote = false;
    try {
      // A failed rotation leaves no handle; reopen so a retry can proceed.
      if (!this.fh) await this.open();
      const chain = this.chain!;
      while (this.notes.length > 0) {
        const note = this.notes[0]!;
        const state = { ...chain };
        const buf = Buffer.from(chainLine(note, state) + '\n', 'utf8');
        await this.writeSync([buf], buf.length);
        Object.assign(chain, state);
        this.notes.shift();
        wrote = true;
      }
      let chunk: Buffer[] = [];
      let chunkBytes = 0;
      let chunkEntries = 0;
      const state = { ...chain };
      const commit = async () => {
        await this.writeSync(chunk, chunkBytes);
        if (chunkBytes > 0) wrote = true;
        Object.assign(chain, state);
        done += chunkEntries;
        chunk = [];
        chunkBytes = 0;
        chunkEntries = 0;
      };
      for (const entry of entries) {
        if (entry === null) {
          chunkEntries++;
          continue;
        }
        const next = { ...state };
        const buf = Buffer.from(chainLine(entry, next) + '\n', 'utf8');
        if (this.size + chunkBytes > 0 && this.size + chunkBytes + buf.length > this.maxBytes) {
          await commit();
          if (this.size > 0) await this.rotate();
        }
        Object.assign(state, next);
        chunk.push(buf);
        chunkBytes += buf.length;
        chunkEntries++;
      }
      await commit();
      // After the fsync: the checkpoint never runs ahead of the durable log.
      if (wrote) await this.checkpoint();
      return { done };
    } catch (error) {
      return { done, error };
    }
  }


  private async writeSync(chunk: Buffer[], bytes: number): Promise<void> {
    if (bytes === 0) return;
    const fh = this.handle();
    const buf = chunk.length === 1 ? chunk[0]! : Buffer.concat(chunk, bytes);
    let off = 0;
    try {
      // write(2) may be partial; loop until the whole batch is down.
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
      await fh.datasync();
    } catch (err) {
      // Cut what got written: the batch is retried whole, and a half line would break the chain.
      await fh.truncate(this.size).catch(() => {});
      throw err;
    }
    this.size += bytes;
  }

  /** audit.log -> audit.log.1 -> … -> audit.log.keep (dropped). The current file is already fsync'd. */
  private async rotate(): Promise<void> {
    await this.handle().close();
    this.fh = null;
    await rm(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) await renameIfExists(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    await rename(this.path, `${this.path}.1`);
    // fsync the directory so the renames survive a crash along with the data.
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    await this.open();
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  private handle(): FileHandle {
    if (!this.fh) throw new Error('audit file is not open');
    return this.fh;
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Batches events and serializes writes: one write in flight, the next batch gathering meanwhile. */
class AuditBatcher {
  /** One entry per received frame; null for a malformed one (never written, still acked to keep counts aligned). */
  private pending: (AuditEvent | null)[] = [];
  private pendingFrames = 0;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private file: AuditFile | null = null;
  written = 0;

  constructor(
    private readonly ack: (msg: AuditAck) => void,
    private batchMs = DEFAULT_BATCH_MS,
  ) {}

  async init(file: AuditFile, batchMs: number): Promise<void> {
    this.batchMs = batchMs;
    await file.open();
    this.file = file;
    this.schedule();
  }

  receive(data: Uint8Array): void {
    this.pendingFrames++;
    let entry: AuditEvent | null = null;
    try {
      const frame = unpack<AuditFrame>(data);
      if (Array.isArray(frame) && frame[0] === T.Audit && typeof frame[1] === 'object' && frame[1] !== null) entry = frame[1];
    } catch {
      // An undecodable frame cannot be written; it is counted so later acks stay aligned.
    }
    this.pending.push(entry);
    this.schedule();
  }

  /** Writes now whatever has arrived, and waits until it (and any write in flight) is fsync'd. */
  async flush(): Promise<{ written: number }> {
    if (!this.file) throw new Error('audit writer is not initialised');
    while (this.writing || this.pendingFrames > 0) {
      if (!this.writing) this.startWrite();
      await this.writing;
    }
    return { written: this.written };
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.file?.close();
    this.file = null;
  }

  private schedule(): void {
    if (!this.file || this.writing || this.pendingFrames === 0) return;
    if (this.pendingFrames >= BATCH_EVENTS) this.startWrite();
    else this.timer ??= setTimeout(() => this.startWrite(), this.batchMs);
  }

  private startWrite(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const file = this.file;
    if (!file || this.writing || this.pendingFrames === 0) return;
    const entries = this.pending;
    this.pending = [];
    this.pendingFrames = 0;
    this.writing = file
      .append(entries)
      .then(async ({ done, error }) => {
        if (done > 0) {
          this.written += entries.slice(0, done).filter((e) => e !== null).length;
          this.ack({ acked: done });
        }
        if (error === undefined) return;
        // Put the rest back in front and retry later; it is not acked, so it is not lost.
        const rest = entries.slice(done);
        this.pending = rest.concat(this.pending);
        this.pendingFrames += rest.length;
        this.ack({ writeError: error instanceof Error ? error.message : String(error) });
        await new Promise((r) => setTimeout(r, RETRY_MS));
      })
      .finally(() => {
        this.writing = null;
        this.schedule();
      });
  }
}

if (parentPort) {
  const hot = parentPort;
  const batcher = new AuditBatcher((msg) => hot.postMessage(msg));
  hot.on('message', (data: Uint8Array) => batcher.receive(data));

  const api: AuditWriterApi = {
    async init(opts) {
      const file = new AuditFile(opts.path, opts.maxBytes ?? 64 * 1024 * 1024, Math.max(1, opts.keep ?? 5), opts.checkpointKey ?? null);
      await batcher.init(file, opts.batchMs ?? DEFAULT_BATCH_MS);
      return { protocolVersion: PROTOCOL_VERSION };
    },
    flush: () => batcher.flush(),
    close: () => batcher.close(),
  };
  Comlink.expose(api, nodeEndpoint((workerData as AuditWorkerData).control));
}
