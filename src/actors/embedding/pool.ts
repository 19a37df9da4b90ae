/**
 * The embedding pool on the main thread: `workers` embedding actors (worker.ts), separate from the
 * engine workers and their decode loop, fed from one bounded queue (a full queue is 429
 * `queue_full`). Workers start on the first use (or at start-up when a configured model can embed),
 * so a server that never embeds pays nothing. Supervised like engine workers: a worker that dies
 * fails its request with 503 `worker_crashed` and is restarted only if it had reached Ready, so a
 * worker that cannot start does not loop. Shutdown disposes native objects in every worker first.
 *
 * Why not piscina (as the tokenizer pool): piscina terminates a thread whose task is aborted, and a
 * thread ending with live llama.cpp objects aborts the whole process (hazards: "Exiting with live
 * native objects"); here a thread ends only after `shutdown` disposed them.
 */
import { Worker } from 'node:worker_threads';
import { InferFluxError, isErrorCode, type WireError } from '../../errors.js';
import type { Metrics } from '../../metrics.js';
import { PROTOCOL_VERSION, type EmbedResult, type EmbedTask } from '../protocol.js';
import { connectRpc, type Remote } from '../rpc.js';
import { EmbeddingDispatch } from './dispatch.js';
import type { EmbeddingApi } from './worker.js';

export interface EmbeddingPoolOptions {
  workers: number;
  threads: number;
  contextSize: number;
  maxQueue: number;
  metrics: Metrics;
  log: (msg: string) => void;
}

interface Job {
  task: EmbedTask;
  resolve(r: EmbedResult): void;
  reject(e: InferFluxError): void;
  settled: boolean;
}

interface Handle {
  index: number;
  worker: Worker;
  rpc: Remote<EmbeddingApi>;
  ready: boolean;
  /** The job it runs, settled when the worker answers or dies. */
  busy: Promise<unknown> | null;
}

/** Time a worker gets to finish its request and dispose its native objects at shutdown. */
const SHUTDOWN_MS = 30_000;

export class EmbeddingPool {
  private readonly dispatch: EmbeddingDispatch<Job>;
  private readonly handles: Handle[] = [];
  private started: Promise<void> | null = null;
  private stopping = false;
  private restarts = 0;
  /** Models every worker loads when it comes up (start-up warm-up, and after a restart). */
  private readonly warmPaths = new Set<string>();

  constructor(private readonly opts: EmbeddingPoolOptions) {
    this.dispatch = new EmbeddingDispatch(opts.maxQueue);
  }

  /** Starts the workers once; later calls wait for the same start. Rejects when none could start. */
  start(): Promise<void> {
    if (this.stopping) return Promise.reject(new InferFluxError('shutting_down'));
    this.started ??= (async () => {
      const results = await Promise.allSettled(Array.from({ length: this.opts.workers }, (_, i) => this.spawn(i)));
      if (results.every((r) => r.status === 'rejected')) {
        this.started = null;
        const why = (results[0] as PromiseRejectedResult).reason;
        throw new InferFluxError('model_not_loaded', `The embedding workers could not start: ${why instanceof Error ? why.message : String(why)}`);
      }
    })();
    return this.started;
  }

  /** Loads `modelPath` in every worker now (and in workers that start later). */
  async warm(modelPath: string): Promise<void> {
    this.warmPaths.add(modelPath);
    await this.start();
    await Promise.all(this.handles.filter((h) => h.ready).map((h) => this.load(h, modelPath)));
  }

  async embed(task: EmbedTask, signal?: AbortSignal): Promise<EmbedResult> {
    await this.start();
    if (this.stopping) throw new InferFluxError('shutting_down');
    return new Promise<EmbedResult>((resolve, reject) => {
      const job: Job = {
        task,
        settled: false,
        resolve: (r) => {
          if (!job.settled) (job.settled = true), resolve(r);
        },
        reject: (e) => {
          if (!job.settled) (job.settled = true), reject(e);
        },
      };
      const s = this.dispatch.submit(job);
      if (s.kind === 'full') {
        return job.reject(
          new InferFluxError('queue_full', `The embedding queue is full (${this.opts.maxQueue} requests waiting, runtime.embeddings.max_queue); retry later.`),
        );
      }
      if (s.kind === 'run') this.send(this.handles[s.worker]!, job);
      this.depth();
      signal?.addEventListener(
        'abort',
        () => {
          // A waiting job whose client left is dropped; a running one finishes (bounded by batch_max inputs).
          if (this.dispatch.withdraw(job)) job.reject(new InferFluxError('invalid_request', 'The client closed the connection.'));
          this.depth();
        },
        { once: true },
      );
    });
  }

  /** For `/readyz`: null until the pool was first used. */
  report(): { name: string; workers: number; ready: number; restarts: number } | null {
    if (this.handles.length === 0) return null;
    return { name: 'embedding', workers: this.handles.length, ready: this.handles.filter((h) => h.ready).length, restarts: this.restarts };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const job of this.dispatch.drain()) job.reject(new InferFluxError('shutting_down'));
    this.depth();
    await Promise.all(
      this.handles.map(async (h) => {
        const wasReady = h.ready;
        h.ready = false;
        if (wasReady) {
          // The running request finishes before native objects go; then they are disposed.
          await withTimeout(Promise.allSettled([h.busy]).then(() => h.rpc.shutdown()), SHUTDOWN_MS).catch((err: unknown) =>
            this.opts.log(`embedding worker ${h.index} did not shut down cleanly: ${String(err)}`),
          );
        }
        await h.worker.terminate();
      }),
    );
  }

  private async spawn(index: number): Promise<void> {
    const worker = new Worker(new URL('./worker.js', import.meta.url));
    const h: Handle = { index, worker, rpc: connectRpc<EmbeddingApi>(worker), ready: false, busy: null };
    this.handles[index] = h;
    worker.on('error', (err) => this.opts.log(`embedding worker ${index} error: ${err.stack ?? String(err)}`));
    worker.once('exit', (code) => this.onExit(h, code));
    try {
      const ready = await h.rpc.start({ worker: index, threads: this.opts.threads, contextSize: this.opts.contextSize });
      if (ready.protocolVersion !== PROTOCOL_VERSION) {
        throw new Error(`embedding worker speaks protocol ${ready.protocolVersion}, main speaks ${PROTOCOL_VERSION}`);
      }
      for (const path of this.warmPaths) await this.load(h, path);
    } catch (err) {
      this.opts.log(`embedding worker ${index} failed to start: ${err instanceof Error ? err.message : String(err)}`);
      // Nothing native is alive when getLlama itself failed; a failed model load disposed what it made.
      await worker.terminate();
      throw err;
    }
    if (this.stopping) {
      // Shutdown began while it started: dispose before the pool terminates it.
      await h.rpc.shutdown().catch(() => undefined);
      return;
    }
    h.ready = true;
    const job = this.dispatch.workerReady(index);
    if (job) this.send(h, job);
    this.depth();
  }

  private async load(h: Handle, modelPath: string): Promise<void> {
    await h.rpc.load(modelPath).catch((err: unknown) => this.opts.log(`embedding worker ${h.index}: ${rebuild(err).message}`));
  }

  private send(h: Handle, job: Job): void {
    h.busy = h.rpc.embed(job.task).then(
      (r) => job.resolve(r),
      (err: unknown) => job.reject(rebuild(err)),
    );
    void h.busy.then(() => {
      h.busy = null;
      // A worker that died meanwhile was replaced; its successor takes the queue.
      if (this.handles[h.index] !== h || !h.ready || this.stopping) return;
      const next = this.dispatch.finished(h.index);
      if (next) this.send(h, next);
      this.depth();
    });
  }

  private onExit(h: Handle, code: number): void {
    const wasReady = h.ready;
    h.ready = false;
    // Its request's promise would never settle (comlink over a dead port): fail it now.
    this.dispatch.workerLost(h.index)?.reject(new InferFluxError('worker_crashed', 'The embedding worker serving this request stopped; retry it.', { retryAfter: 1 }));
    if (this.stopping || this.handles[h.index] !== h) return;
    this.opts.log(`embedding worker ${h.index} exited (code ${code})${wasReady ? '; restarting' : ''}`);
    if (wasReady) {
      this.restarts++;
      this.opts.metrics.workerRestarts.inc({ pool: 'embedding' });
      void this.spawn(h.index).catch(() => this.failIfNoWorker());
    }
    // A worker that never got ready: start() reports it (requests are queued only once one is up).
  }

  /** With no worker left to take them, waiting requests would hang: fail them. */
  private failIfNoWorker(): void {
    if (this.handles.some((h) => h.ready)) return;
    for (const job of this.dispatch.drain()) job.reject(new InferFluxError('worker_crashed', 'No embedding worker is running; retry later.', { retryAfter: 5 }));
    this.started = null;
    this.depth();
  }

  private depth(): void {
    this.opts.metrics.embeddingQueueDepth.set(this.dispatch.queued);
  }
}

/** Worker rejections are WireError data; anything else (a thread that died) is internal. */
function rebuild(err: unknown): InferFluxError {
  if (err instanceof InferFluxError) return err;
  if (typeof err === 'object' && err !== null && !(err instanceof Error)) {
    const wire = err as Partial<WireError>;
    if (typeof wire.code === 'string' && isErrorCode(wire.code) && typeof wire.message === 'string') return InferFluxError.fromWire(wire as WireError);
  }
  return new InferFluxError('internal_error', `Embedding worker failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}
