/**
 * Main-thread handle on the audit writer actor (`worker.ts`).
 *
 * `record()` is the hot path: pack, post with the buffer transferred, no await. Every posted event
 * stays in a bounded in-memory list until the worker acknowledges it after fsync; if the worker
 * dies, a new one is started and everything unacknowledged is sent again. Delivery is therefore
 * at least once: an event fsync'd just before a crash, whose ack was lost, is written twice.
 */
import { Worker, MessageChannel } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeAdapter from 'comlink/dist/umd/node-adapter.js';
import { InferFluxError } from '../../errors.js';
import { PROTOCOL_VERSION, T, pack, type AuditEvent, type AuditFrame } from '../protocol.js';
import type { AuditAck, AuditWorkerData, AuditWriterApi, AuditWriterOptions } from './worker.js';

/** See worker.ts: the UMD adapter's runtime default export is the function itself. */
const nodeEndpoint = nodeAdapter as unknown as typeof nodeAdapter.default;

export interface AuditWriterStartOptions extends AuditWriterOptions {
  /**
   * Unacknowledged events kept for re-sending after a worker crash. Past this, the oldest are
   * forgotten (still in flight, but no longer re-sent) and counted in `stats().overflowed`.
   * Defaults to `65536`.
   */
  maxUnacked?: number;
  /** Called when the worker reports a failed write (it retries the batch). */
  onWriteError?: (message: string) => void;
  /** Called after a crashed worker was replaced. */
  onRestart?: () => void;
}

export interface AuditWriter {
  /** Fire and forget; durable once a later `flush()` resolves. */
  record(event: AuditEvent): void;
  /** Resolves when every event recorded before the call is fsync'd; `written` counts all acked events. */
  flush(): Promise<{ written: number }>;
  /** Flushes, closes the file and ends the worker thread. */
  close(): Promise<void>;
  stats(): { acked: number; lost: number; unacked: number; restarts: number; overflowed: number };
  /** @internal The live worker, so tests can kill it. */
  readonly _worker: Worker;
}

interface Live {
  worker: Worker;
  api: Comlink.Remote<AuditWriterApi>;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

export async function startAuditWriter(opts: AuditWriterStartOptions): Promise<AuditWriter> {
  const writer = new AuditWriterImpl(opts);
  await writer.start();
  return writer;
}

class AuditWriterImpl implements AuditWriter {
  /** Unacked events in send order; `head` is the first not yet acked (avoids O(n) shifts). */
  private unacked: AuditEvent[] = [];
  private head = 0;
  private acked = 0;
  /** Events sent but forgotten by overflow and not yet acked; acks consume these first (FIFO). */
  private debt = 0;
  /** Overflowed events lost with a crashed worker: never acked, but flush must not wait for them. */
  private lost = 0;
  private sent = 0;
  private restarts = 0;
  private overflowed = 0;
  private live: Live | null = null;
  private closing = false;
  private failed: InferFluxError | null = null;
  /** Flushes waiting for `acked` to reach a target. */
  private waiters: { target: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly maxUnacked: number;

  constructor(private readonly opts: AuditWriterStartOptions) {
    this.maxUnacked = opts.maxUnacked ?? 65536;
  }

  get _worker(): Worker {
    if (!this.live) throw new InferFluxError('internal_error', 'audit writer has no live worker');
    return this.live.worker;
  }

  async start(): Promise<void> {
    this.live = await this.spawn();
  }

  record(event: AuditEvent): void {
    if (this.closing) throw new InferFluxError('shutting_down', 'audit writer is closed');
    this.unacked.push(event);
    this.sent++;
    if (this.unacked.length - this.head > this.maxUnacked) {
      this.head++;
      this.debt++;
      this.overflowed++;
    }
    this.compact();
    if (this.live) post(this.live.worker, event);
  }

  async flush(): Promise<{ written: number }> {
    if (this.failed) throw this.failed;
    const target = this.sent;
    // Ports are not ordered against each other, so the RPC only hurries the batch along; the
    // guarantee comes from waiting for acks covering every event sent before this call.
    // It is not awaited: a worker dying mid-call would leave it pending forever.
    this.live?.api.flush().catch(() => {});
    if (this.acked + this.lost < target) {
      await new Promise<void>((resolve, reject) => this.waiters.push({ target, resolve, reject }));
    }
    return { written: this.acked };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    try {
      await this.flush();
    } finally {
      this.closing = true;
      const live = this.live;
      this.live = null;
      if (live) {
        // Close the file before ending the thread; racing the exit keeps a dying worker from hanging us.
        await Promise.race([live.api.close().catch(() => {}), new Promise((r) => live.worker.once('exit', r))]);
        live.api[Comlink.releaseProxy]();
        await live.worker.terminate();
      }
    }
  }

  stats() {
    return { acked: this.acked, lost: this.lost, unacked: this.unacked.length - this.head, restarts: this.restarts, overflowed: this.overflowed };
  }

  private async spawn(): Promise<Live> {
    const { port1, port2 } = new MessageChannel();
    const data: AuditWorkerData = { control: port2 };
    const worker = new Worker(WORKER_URL, { workerData: data, transferList: [port2] });
    const api = Comlink.wrap<AuditWriterApi>(nodeEndpoint(port1));
    worker.on('message', (msg: AuditAck) => this.onAck(msg));
    // 'error' is always followed by 'exit'; handling it keeps it from becoming an uncaught exception.
    worker.on('error', () => {});
    let ready = false;
    worker.once('exit', () => {
      port1.close();
      if (this.live?.worker === worker && !this.closing) void this.restart(ready);
    });
    const { path, maxBytes, keep, batchMs, checkpointKey } = this.opts;
    const hello = await api.init({ path, maxBytes, keep, batchMs, checkpointKey }).catch(async (err: unknown) => {
      await worker.terminate();
      throw new InferFluxError('internal_error', `audit writer failed to start: ${String((err as Error)?.message ?? err)}`, { cause: err });
    });
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      await worker.terminate();
      throw new InferFluxError('internal_error', `audit writer protocol ${hello.protocolVersion} != ${PROTOCOL_VERSION}`);
    }
    ready = true;
    return { worker, api };
  }

  /** Only a worker that reached ready is replaced, so a bad path cannot start a crash loop. */
  private async restart(wasReady: boolean): Promise<void> {
    this.live = null;
    // Everything the old worker never acked is re-sent; acks from the new one count from zero.
    // Overflowed events cannot be re-sent: if they were not acked, they died with the worker.
    this.lost += this.debt;
    this.debt = 0;
    try {
      if (!wasReady) throw new InferFluxError('internal_error', 'audit writer died before it was ready');
      const live = await this.spawn();
      this.restarts++;
      this.live = live;
      for (let i = this.head; i < this.unacked.length; i++) post(live.worker, this.unacked[i]!);
      this.opts.onRestart?.();
    } catch (err) {
      this.failed = InferFluxError.from(err);
      for (const w of this.waiters.splice(0)) w.reject(this.failed);
    }
  }

  private onAck(msg: AuditAck): void {
    if ('writeError' in msg) {
      this.opts.onWriteError?.(msg.writeError);
      return;
    }
    const fromDebt = Math.min(msg.acked, this.debt);
    this.debt -= fromDebt;
    this.head = Math.min(this.unacked.length, this.head + msg.acked - fromDebt);
    this.acked += msg.acked;
    this.compact();
    this.waiters = this.waiters.filter((w) => {
      if (this.acked + this.lost < w.target) return true;
      w.resolve();
      return false;
    });
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.unacked.length) {
      this.unacked = this.unacked.slice(this.head);
      this.head = 0;
    }
  }
}

function post(worker: Worker, event: AuditEvent): void {
  const frame: AuditFrame = [T.Audit, event];
  const bytes = pack(frame);
  // msgpackr returns a view into its reused working buffer; transferring that would detach it, so
  // copy into a right-sized buffer unless `pack` already did. (`new Uint8Array(x)` copies;
  // `Buffer#slice` would not.)
  const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
  worker.postMessage(owned, [owned.buffer as ArrayBuffer]);
}
