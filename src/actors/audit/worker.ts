/**
 * Audit writer actor: appends one JSON line per audit event to a file, batched and fsync'd.
 *
 * Ports: hot `AuditFrame`s arrive on `parentPort` (msgpackr bytes, buffer transferred) and acks go
 * back on it; control (`init`, `flush`, `close`) is comlink RPC on the port passed in `workerData`.
 *
 * Durability contract: events are counted in arrival order and acknowledged by count
 * (`{acked: n}`) only after the `fdatasync` that covers them, so the client can keep every
 * unacknowledged event and re-send it if this thread dies. A batch closes after 20 ms or 256
 * events, whichever comes first, and is written with one `write` (two when a rotation splits it).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as Comlink from 'comlink';
import nodeAdapter from 'comlink/dist/umd/node-adapter.js';
import { PROTOCOL_VERSION, T, unpack, type AuditEvent, type AuditFrame, type WorkerHello } from '../protocol.js';

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

const BATCH_MS = 20;
const BATCH_EVENTS = 256;
/** Pause before retrying a failed write (disk full, EIO): the batch stays pending, never dropped. */
const RETRY_MS = 500;

/**
 * JSON.stringify escapes CR, LF and every C0 control, but leaves U+0085, U+2028 and U+2029 raw;
 * some line readers (Python's `splitlines`, some log shippers) treat those as line breaks too.
 */
export function auditLine(event: AuditEvent): string {
  return JSON.stringify(event).replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n';
}

class AuditFile {
  private fh: FileHandle | null = null;
  private size = 0;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {}

  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    this.fh = await open(this.path, 'a');
    this.size = (await this.fh.stat()).size;
  }

  /** Writes whole lines, rotating between lines so no file outgrows `maxBytes` unless one line does. */
  async append(lines: string[]): Promise<void> {
    // A failed rotation leaves no handle; reopen so a retry can proceed.
    if (!this.fh) await this.open();
    let chunk: Buffer[] = [];
    let chunkBytes = 0;
    for (const line of lines) {
      const buf = Buffer.from(line, 'utf8');
      if (this.size + chunkBytes > 0 && this.size + chunkBytes + buf.length > this.maxBytes) {
        await this.writeSync(chunk, chunkBytes);
        chunk = [];
        chunkBytes = 0;
        if (this.size > 0) await this.rotate();
      }
      chunk.push(buf);
      chunkBytes += buf.length;
    }
    await this.writeSync(chunk, chunkBytes);
  }

  private async writeSync(chunk: Buffer[], bytes: number): Promise<void> {
    if (bytes === 0) return;
    const fh = this.handle();
    const buf = chunk.length === 1 ? chunk[0]! : Buffer.concat(chunk, bytes);
    let off = 0;
    // write(2) may be partial; loop until the whole batch is down.
    while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
    await fh.datasync();
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
  private pending: string[] = [];
  /** Frames in `pending` (malformed frames are skipped but still counted, to keep acks aligned). */
  private pendingFrames = 0;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private file: AuditFile | null = null;
  written = 0;

  constructor(private readonly ack: (msg: AuditAck) => void) {}

  async init(file: AuditFile): Promise<void> {
    await file.open();
    this.file = file;
    this.schedule();
  }

  receive(data: Uint8Array): void {
    this.pendingFrames++;
    try {
      const frame = unpack<AuditFrame>(data);
      if (Array.isArray(frame) && frame[0] === T.Audit && typeof frame[1] === 'object' && frame[1] !== null) {
        this.pending.push(auditLine(frame[1]));
      }
    } catch {
      // An undecodable frame cannot be written; it is counted so later acks stay aligned.
    }
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
    else this.timer ??= setTimeout(() => this.startWrite(), BATCH_MS);
  }

  private startWrite(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const file = this.file;
    if (!file || this.writing || this.pendingFrames === 0) return;
    const lines = this.pending;
    const frames = this.pendingFrames;
    this.pending = [];
    this.pendingFrames = 0;
    this.writing = file
      .append(lines)
      .then(
        () => {
          this.written += lines.length;
          this.ack({ acked: frames });
        },
        async (err: unknown) => {
          // Put the batch back in front and retry later; it is not acked, so it is not lost.
          this.pending = lines.concat(this.pending);
          this.pendingFrames += frames;
          this.ack({ writeError: err instanceof Error ? err.message : String(err) });
          await new Promise((r) => setTimeout(r, RETRY_MS));
        },
      )
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
      await batcher.init(new AuditFile(opts.path, opts.maxBytes ?? 64 * 1024 * 1024, Math.max(1, opts.keep ?? 5)));
      return { protocolVersion: PROTOCOL_VERSION };
    },
    flush: () => batcher.flush(),
    close: () => batcher.close(),
  };
  Comlink.expose(api, nodeEndpoint((workerData as AuditWorkerData).control));
}
