/**
 * The actor tree, owned by the main thread: scheduler, engine workers per model, tokenizer pool,
 * audit writer. Spawns them, checks protocol versions, restarts crashed workers (only ones that
 * had reached Ready, so a broken model cannot start a crash loop), and shuts everything down in
 * order, disposing native objects in every worker before the process exits.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { InferFluxConfig, ModelEntry } from '../config/types.js';
import type { Metrics } from '../metrics.js';
import {
  PROTOCOL_VERSION,
  T,
  postFrame,
  unpack,
  type EngineReady,
  type EngineStatus,
  type EngineRole,
  type Envelope,
  type FromScheduler,
  type ToScheduler,
} from './protocol.js';
import { connectRpc, type Remote } from './rpc.js';
import { KvRing } from '../runtime/kv/kv-ring.js';
import type { EngineApi } from './engine/worker.js';
import type { SchedulerApi } from './scheduler/worker.js';
import { createTokenizerPool, type TokenizerPool } from './tokenizer/pool.js';
import { startAuditWriter, type AuditWriter } from './audit/client.js';
import { EmbeddingPool } from './embedding/pool.js';
import { createCoreBudget, reclaimCoreSlot } from './core-budget.js';
import { checkpointKey } from '../audit/checkpoint.js';

export type Log = (msg: string) => void;

/** One worker pool's health, for `/readyz`. */
export interface PoolReport {
  name: string;
  workers: number;
  ready: number;
  restarts: number;
}

/** Time an engine worker gets to finish its batch and dispose its native objects at shutdown. */
const ENGINE_SHUTDOWN_MS = 60_000;
/** Time a worker whose start failed gets to exit by itself (see endFailedWorker). */
const FAILED_EXIT_MS = 30_000;

/** One engine worker in `/debug` (ActorSystem.engineDebug). */
export interface EngineDebug {
  model: string;
  role: EngineRole;
  worker: number;
  ready: boolean;
  stopping: boolean;
  status: EngineStatus | null;
}

interface EngineHandle {
  model: ModelEntry;
  role: EngineRole;
  index: number;
  worker: Worker;
  rpc: Remote<EngineApi>;
  ready: EngineReady | null;
  stopping: boolean;
  /** Its slot in the shared core budget (kept across restarts, freed when the model stops). */
  coreSlot: number;
}

export class ActorSystem {
  private readonly engines: EngineHandle[] = [];
  private scheduler!: { worker: Worker; rpc: Remote<SchedulerApi>; hot: MessagePort };
  private readonly restarts = { decode: 0, prefill: 0, scheduler: 0 };
  /** Queue depth per model and phase, as last reported by the scheduler. */
  private readonly queued = new Map<string, number>();
  /** Disaggregated mode: each decode worker's KV ring (kept across its restarts), by model and index. */
  private readonly rings = new Map<string, SharedArrayBuffer>();
  private readonly failed = new Map<string, string>();
  /** Models whose workers are being stopped on purpose: an exit there is not a crash to restart. */
  private readonly stoppingModels = new Set<string>();
  private stopping = false;
  /** False between a scheduler crash and its replacement's hello. */
  private schedulerUp = false;
  /** Current fairness settings: the config's, then live updates (kept across scheduler restarts). */
  private fairness: InferFluxConfig['runtime']['fairness'];
  /** Fairness counters already added to the Prometheus counters (the scheduler's are cumulative). */
  private fairnessSeen = { preemptions: 0, yields: 0, migrations: 0, resumes: 0, priority: new Map<number, number>(), tenant: new Map<string, number>() };
  /** Embedding workers, apart from the engines; they start on first use (see pool.ts). */
  readonly embeddings: EmbeddingPool;
  /** The cores every engine worker claims its llama.cpp threads from, step by step (core-budget.ts). */
  private readonly coreBudget: SharedArrayBuffer;

  private constructor(
    private readonly config: InferFluxConfig,
    private readonly metrics: Metrics,
    private readonly log: Log,
    readonly tokenizer: TokenizerPool,
    readonly audit: AuditWriter,
  ) {
    this.fairness = { ...config.runtime.fairness };
    this.coreBudget = createCoreBudget(config.runtime.cores);
    const e = config.runtime.embeddings;
    this.embeddings = new EmbeddingPool({ workers: e.workers, threads: e.threads, contextSize: e.contextSize, maxQueue: e.maxQueue, metrics, log });
    metrics.onScrape(() => this.collectFairness());
    metrics.onScrape(() => this.collectCache());
    metrics.onScrape(() => this.collectTickets());
    metrics.onScrape(() => this.collectGrammarSamples());
  }

  /** Prefix cache state of every ready engine worker (admin API, metrics). */
  async cacheStatus(): Promise<{ model: string; worker: number; cache: unknown; resident: number[] }[]> {
    const ready = this.engines.filter((e) => e.ready);
    const all = await Promise.all(ready.map(async (e) => ({ model: e.model.id, ...(await e.rpc.cacheStatus()) })));
    return all;
  }

  private ticketsSeen = { shipped: 0, blocked: 0 };

  private async collectTickets(): Promise<void> {
    if (this.config.scheduler.prefillPoolSize === 0) return;
    const t = await this.kvTickets();
    // Counts restart from zero when a prefill worker restarts; only growth is added.
    this.metrics.kvShippedTickets.inc(Math.max(0, t.shipped - this.ticketsSeen.shipped));
    this.metrics.kvBlockedTickets.inc(Math.max(0, t.blocked - this.ticketsSeen.blocked));
    this.ticketsSeen = t;
  }

  /** Last grammar sample counts seen per engine worker thread (a restarted worker counts from zero). */
  private grammarSamplesSeen = new WeakMap<object, EngineStatus['grammarSamples']>();

  private async collectGrammarSamples(): Promise<void> {
    await Promise.all(
      this.engines
        .filter((e) => e.ready)
        .map(async (e) => {
          const now = (await e.rpc.status()).grammarSamples;
          const seen = this.grammarSamplesSeen.get(e.worker);
          for (const path of Object.keys(now) as (keyof typeof now)[]) {
            const grown = now[path] - (seen?.[path] ?? 0);
            if (grown > 0) this.metrics.grammarSamples.inc({ path }, grown);
          }
          this.grammarSamplesSeen.set(e.worker, now);
        }),
    );
  }

  private cacheEvictionsSeen = new Map<string, number>();

  private async collectCache(): Promise<void> {
    let used = 0;
    let total = 0;
    let disk = 0;
    for (const w of await this.cacheStatus()) {
      const c = w.cache as { host: { pagesUsed: number; pagesTotal: number; evictions: number }; disk: { enabled: boolean; bytes?: number } } | null;
      if (!c) continue;
      used += c.host.pagesUsed;
      total += c.host.pagesTotal;
      disk += c.disk.enabled ? (c.disk.bytes ?? 0) : 0;
      const key = `${w.model}#${w.worker}`;
      const seen = this.cacheEvictionsSeen.get(key) ?? 0;
      // A restarted worker counts from zero again.
      const delta = c.host.evictions >= seen ? c.host.evictions - seen : c.host.evictions;
      if (delta > 0) this.metrics.kvHostEvictions.inc(delta);
      this.cacheEvictionsSeen.set(key, c.host.evictions);
    }
    this.metrics.kvHostPages.set({ state: 'used' }, used);
    this.metrics.kvHostPages.set({ state: 'total' }, total);
    this.metrics.kvDiskBytes.set(disk);
  }

  /** Drop every cached prefix in every engine worker. */
  async flushCache(): Promise<number> {
    const removed = await Promise.all(this.engines.filter((e) => e.ready).map((e) => e.rpc.flushCache()));
    return removed.reduce((a, b) => a + b, 0);
  }

  /** The fairness settings in force (config, then live changes). */
  get fairnessSettings(): InferFluxConfig['runtime']['fairness'] {
    return { ...this.fairness };
  }

  /** Change runtime.fairness.* live; running requests may be suspended at once. */
  async setFairness(patch: Partial<InferFluxConfig['runtime']['fairness']>): Promise<InferFluxConfig['runtime']['fairness']> {
    this.fairness = { ...this.fairness, ...patch };
    return this.scheduler.rpc.setFairness(patch);
  }

  private async collectFairness(): Promise<void> {
    if (!this.schedulerUp) return;
    const f = await this.scheduler.rpc.fairness();
    let seen = this.fairnessSeen;
    // After a scheduler restart its counters start again from zero.
    if (f.preemptions < seen.preemptions || f.resumes < seen.resumes || f.yields < seen.yields || f.migrations < seen.migrations) {
      this.fairnessSeen = seen = { preemptions: 0, yields: 0, migrations: 0, resumes: 0, priority: new Map(), tenant: new Map() };
    }
    this.metrics.fairnessPreemptions.inc(f.preemptions - seen.preemptions);
    this.metrics.fairnessYields.inc(f.yields - seen.yields);
    this.metrics.fairnessResumes.inc(f.resumes - seen.resumes);
    this.metrics.schedulerMigrations.inc(f.migrations - seen.migrations);
    Object.assign(seen, { preemptions: f.preemptions, yields: f.yields, migrations: f.migrations, resumes: f.resumes });
    for (const [priority, n] of f.tokensByPriority) {
      const d = n - (seen.priority.get(priority) ?? 0);
      if (d > 0) this.metrics.fairnessTokens.inc({ priority: String(priority) }, d);
      seen.priority.set(priority, n);
    }
    for (const [tenant, n] of f.tokensByTenant) {
      const d = n - (seen.tenant.get(tenant) ?? 0);
      if (d > 0) this.metrics.tenantTokens.inc({ tenant }, d);
      seen.tenant.set(tenant, n);
    }
  }

  static async start(config: InferFluxConfig, metrics: Metrics, log: Log): Promise<ActorSystem> {
    const audit = await startAuditWriter({
      path: config.audit.path,
      batchMs: config.audit.flushIntervalMs,
      // The checkpoint is signed with a key from the policy passphrase when there is one
      // (checkpoint.ts explains the trust model).
      checkpointKey: checkpointKey(process.env.INFERFLUX_POLICY_PASSPHRASE),
      // A failed batch is retried until it lands; the metric tells operators the disk is in trouble.
      onWriteError: (message: string) => {
        metrics.auditDropped.inc();
        log(`audit write failed (retrying): ${message}`);
      },
    });
    const tokenizer = createTokenizerPool({ workers: config.scheduler.tokenizerWorkers });
    const system = new ActorSystem(config, metrics, log, tokenizer, audit);
    await system.spawnScheduler();
    // A configured model that fails to start leaves the server up: /readyz and its requests say why.
    await Promise.all(config.models.map((m) => system.startModel(m, { lenientTokenizer: true }).catch(() => undefined)));
    return system;
  }

  /**
   * Starts a model's engine pool (decode, and prefill in disaggregated mode) and loads its
   * tokenizer in every tokenizer thread, while every other model keeps serving. Rejects, saying
   * why, when no worker came up (the failed workers are already gone).
   */
  async startModel(model: ModelEntry, opts: { lenientTokenizer?: boolean } = {}): Promise<void> {
    const warm = this.tokenizer.warm(model.path).catch((err: unknown) => {
      if (!opts.lenientTokenizer) throw err;
    });
    const engines: Promise<void>[] = [];
    const disaggregated = this.config.scheduler.prefillPoolSize > 0;
    for (let i = 0; i < this.config.scheduler.decodePoolSize; i++) engines.push(this.spawnEngine(model, disaggregated ? 'decode' : 'unified', i));
    for (let i = 0; i < this.config.scheduler.prefillPoolSize; i++) engines.push(this.spawnEngine(model, 'prefill', i));
    const [tok] = await Promise.allSettled([warm, Promise.all(engines)]);
    if (this.engineInfo(model.id) === null) throw new Error(this.failed.get(model.id) ?? 'no engine worker came up');
    if (tok.status === 'rejected') {
      await this.stopModel(model);
      throw tok.reason instanceof Error ? tok.reason : new Error(String(tok.reason));
    }
  }

  /**
   * Stops a model's engine workers (the caller has drained its requests): the scheduler forgets
   * them first so nothing new is placed there, each worker disposes its llama.cpp objects, and the
   * tokenizer threads drop the model's vocabulary unless another model id serves the same file.
   */
  async stopModel(model: ModelEntry): Promise<void> {
    const mine = this.engines.filter((e) => e.model.id === model.id);
    this.stoppingModels.add(model.id);
    try {
      await Promise.all(
        mine.map(async (e) => {
          e.stopping = true;
          this.toScheduler([T.EngineDown, { model: e.model.id, worker: e.index, role: e.role }]);
          if (e.ready) await withTimeout(e.rpc.shutdown(), ENGINE_SHUTDOWN_MS).catch((err: unknown) => this.log(`engine ${e.model.id}#${e.index} did not shut down cleanly: ${String(err)}`));
          await e.worker.terminate();
        }),
      );
    } finally {
      this.stoppingModels.delete(model.id);
    }
    for (const e of mine) this.engines.splice(this.engines.indexOf(e), 1);
    for (const key of [...this.rings.keys()]) if (key.startsWith(`${model.id}#`)) this.rings.delete(key);
    this.failed.delete(model.id);
    for (const phase of ['prefill', 'decode']) this.queued.delete(`${model.id}\u0000${phase}`);
    if (!this.engines.some((e) => e.model.path === model.path)) {
      await this.tokenizer.release(model.path).catch((err: unknown) => this.log(`tokenizer release of ${model.path} failed: ${String(err)}`));
    }
  }

  /**
   * Load a LoRA adapter file into every ready engine worker of the model (prefill and decode), so
   * a file llama.cpp refuses is refused at load, not at a request. A worker that restarts later
   * loads it again when a request first needs it.
   */
  async loadAdapter(modelId: string, adapter: { path: string; sha256: string }): Promise<void> {
    const mine = this.engines.filter((e) => e.model.id === modelId && e.ready && !e.stopping);
    if (mine.length === 0) throw new Error(`no engine worker of model '${modelId}' is ready`);
    await Promise.all(mine.map((e) => e.rpc.loadAdapter(adapter)));
  }

  /** Ready engine info for a model (the first ready worker), or null when none is ready. */
  engineInfo(modelId: string): EngineReady | null {
    const ready = (role: EngineRole) => this.engines.some((e) => e.model.id === modelId && e.role === role && e.ready);
    // Disaggregated mode serves a model only while both of its pools have a ready worker.
    if (this.config.scheduler.prefillPoolSize > 0 && !(ready('prefill') && ready('decode'))) return null;
    return this.engines.find((e) => e.model.id === modelId && e.role !== 'prefill' && e.ready)?.ready ?? null;
  }

  /** Why a model has no ready engine, if its workers failed to start. */
  failure(modelId: string): string | undefined {
    return this.failed.get(modelId);
  }

  /** Start-up failure for the registry: why a configured model has no ready engine, null when it has one. */
  startupFailure(modelId: string): string | null {
    if (this.engineInfo(modelId) !== null) return null;
    return this.failed.get(modelId) ?? 'no engine worker came up';
  }

  pools(): PoolReport[] {
    const decode = this.engines.filter((e) => e.role !== 'prefill');
    const prefill = this.engines.filter((e) => e.role === 'prefill');
    const pools: PoolReport[] = [
      { name: 'decode', workers: decode.length, ready: decode.filter((e) => e.ready).length, restarts: this.restarts.decode },
    ];
    if (prefill.length > 0) {
      pools.push({ name: 'prefill', workers: prefill.length, ready: prefill.filter((e) => e.ready).length, restarts: this.restarts.prefill });
    }
    pools.push({ name: 'scheduler', workers: 1, ready: this.schedulerUp ? 1 : 0, restarts: this.restarts.scheduler });
    const embedding = this.embeddings.report();
    if (embedding) pools.push(embedding);
    return pools;
  }

  /**
   * Every engine worker as `/debug` shows it: its model, role and state, and for a ready one its
   * live status (sequences, steps, adapter, the step loop's time split). A worker too busy to
   * answer within `timeoutMs` (a long prefill step) shows `status: null`.
   */
  async engineDebug(timeoutMs = 2000): Promise<EngineDebug[]> {
    return Promise.all(
      this.engines.map(async (e) => {
        const row = { model: e.model.id, role: e.role, worker: e.index, ready: e.ready !== null, stopping: e.stopping };
        if (!e.ready) return { ...row, status: null };
        const status = await withTimeout(e.rpc.status(), timeoutMs).catch(() => null);
        return { ...row, status };
      }),
    );
  }

  /** Hand-off counters of the prefill workers: tickets written and tickets a full ring turned away. */
  async kvTickets(): Promise<{ shipped: number; blocked: number }> {
    const st = await Promise.all(this.engines.filter((e) => e.role === 'prefill' && e.ready).map((e) => e.rpc.status()));
    return { shipped: st.reduce((a, x) => a + x.shippedTickets, 0), blocked: st.reduce((a, x) => a + x.blockedTickets, 0) };
  }

  /** The live worker threads of a pool (supervision tests stop them to simulate a crash). */
  workers(pool: 'decode' | 'scheduler'): Worker[] {
    return pool === 'scheduler' ? [this.scheduler.worker] : this.engines.filter((e) => e.role !== 'prefill').map((e) => e.worker);
  }

  /**
   * Make engine worker `index` of a model throw an uncaught error (supervision tests; refused
   * unless INFERFLUX_FAULT_INJECTION=1). Terminating an engine thread from outside instead would
   * abort the process, because its llama.cpp objects would still be alive.
   */
  async injectEngineFault(model: string, index: number): Promise<void> {
    const e = this.engines.find((x) => x.model.id === model && x.index === index);
    if (!e) throw new Error(`no engine ${model}#${index}`);
    await e.rpc.injectFault();
  }

  /**
   * Make engine worker `index` of a model call `process.abort()`, as a failed GGML_ASSERT would
   * (supervisor tests; refused unless INFERFLUX_FAULT_INJECTION=1). The whole process dies.
   */
  async injectEngineAbort(model: string, index: number): Promise<void> {
    const e = this.engines.find((x) => x.model.id === model && x.index === index);
    if (!e) throw new Error(`no engine ${model}#${index}`);
    await e.rpc.injectAbort();
  }

  get schedulerReady(): boolean {
    return this.schedulerUp;
  }

  /**
   * Hand a frame to the scheduler; `ride` is the request port transferred with an Admit.
   * Returns false while the scheduler is restarting (the frame is not sent).
   */
  toScheduler(frame: ToScheduler, ride?: MessagePort): boolean {
    if (!this.schedulerUp) return false;
    postFrame(this.scheduler.hot, frame, ride);
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.engines.map(async (e) => {
        e.stopping = true;
        // The engine finishes its current batch before disposing llama.cpp objects; a long
        // prefill step on a busy CPU can take seconds. Terminating the thread while they are
        // alive would abort the whole process, so wait generously rather than cut it short.
        if (e.ready) await withTimeout(e.rpc.shutdown(), ENGINE_SHUTDOWN_MS).catch((err: unknown) => this.log(`engine ${e.model.id}#${e.index} did not shut down cleanly: ${String(err)}`));
        await e.worker.terminate();
      }),
    );
    await this.scheduler.worker.terminate();
    await this.embeddings.stop();
    await this.tokenizer.destroy();
    await this.audit.close();
  }

  private async spawnScheduler(): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL('./scheduler/worker.js', import.meta.url), {
      workerData: { hot: port2, maxQueue: this.config.scheduler.maxQueue, fairness: this.fairness, isolatePromptTokens: this.config.scheduler.isolatePromptTokens, placement: this.config.scheduler.placement },
      transferList: [port2],
    });
    const rpc = connectRpc<SchedulerApi>(worker);
    port1.on('message', (env: Envelope) => this.onSchedulerFrame(env));
    worker.on('error', (err) => this.log(`scheduler error: ${err.stack ?? String(err)}`));
    worker.once('exit', (code) => {
      this.schedulerUp = false;
      port1.close();
      if (this.stopping) return;
      this.restarts.scheduler++;
      this.metrics.workerRestarts.inc({ pool: 'scheduler' });
      this.log(`scheduler exited (code ${code}); restarting and re-linking engines`);
      void this.spawnScheduler().then(() => Promise.all(this.engines.filter((e) => e.ready).map((e) => this.link(e))));
    });
    const hello = await rpc.hello();
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      await worker.terminate();
      throw new Error(`scheduler speaks protocol ${hello.protocolVersion}, main speaks ${PROTOCOL_VERSION}`);
    }
    this.scheduler = { worker, rpc, hot: port1 };
    this.schedulerUp = true;
  }

  private onSchedulerFrame(env: Envelope): void {
    const frame = unpack<FromScheduler>(env.f);
    switch (frame[0]) {
      case T.QueueDepth: {
        const { model, phase, queued, active } = frame[1];
        (phase === 'prefill' ? this.metrics.prefillQueueDepth : this.metrics.decodeQueueDepth).set({ model }, queued);
        this.metrics.activeSequences.set({ model, phase }, active);
        // The overall gauge: everything waiting for the model, in either phase.
        this.queued.set(`${model}\u0000${phase}`, queued);
        this.metrics.queueDepth.set({ model }, (this.queued.get(`${model}\u0000prefill`) ?? 0) + (this.queued.get(`${model}\u0000decode`) ?? 0));
        break;
      }
      default: {
        const never: never = frame[0];
        throw new Error(`main: unknown scheduler frame ${String(never)}`);
      }
    }
  }

  /** This decode worker's KV ring; created once, so a restarted worker gets the same one. */
  private ringOf(model: string, index: number): SharedArrayBuffer {
    const key = `${model}#${index}`;
    let ring = this.rings.get(key);
    if (!ring) this.rings.set(key, (ring = KvRing.create(this.config.scheduler.kvRingBytes)));
    return ring;
  }

  private ringsFor(model: ModelEntry, role: EngineRole, index: number): SharedArrayBuffer[] {
    if (role === 'decode') return [this.ringOf(model.id, index)];
    if (role === 'prefill') return Array.from({ length: this.config.scheduler.decodePoolSize }, (_, i) => this.ringOf(model.id, i));
    return [];
  }

  private async spawnEngine(model: ModelEntry, role: EngineRole, index: number, slot?: number): Promise<void> {
    const worker = new Worker(new URL('./engine/worker.js', import.meta.url));
    const coreSlot = slot === undefined ? this.freeCoreSlot() : this.engines[slot]!.coreSlot;
    const handle: EngineHandle = { model, role, index, worker, rpc: connectRpc<EngineApi>(worker), ready: null, stopping: false, coreSlot };
    if (slot === undefined) this.engines.push(handle);
    else this.engines[slot] = handle;
    worker.on('error', (err) => this.log(`engine ${model.id}#${index} error: ${err.stack ?? String(err)}`));
    worker.once('exit', (code) => this.onEngineExit(handle, code));
    const rt = this.config.runtime;
    try {
      const ready = await handle.rpc.start({
        role,
        rings: this.ringsFor(model, role, index),
        model: model.id,
        modelPath: model.path,
        worker: index,
        threads: rt.threadsPerWorker,
        cores: { budget: this.coreBudget, slot: coreSlot, spreadTokens: rt.prefillSpreadTokens },
        sequences: rt.sequencesPerWorker,
        contextSize: rt.contextSize,
        batchSize: rt.batchSize,
        flashAttention: rt.flashAttention,
        metalLayers: model.backend === 'mps' ? rt.mpsLayers : null,
        prefillChunk: rt.prefillChunk,
        prefillChunkDecoding: rt.prefillChunkDecoding,
        kvCpuPages: rt.pagedKv.cpuPages,
        kvEviction: rt.pagedKv.eviction,
        nvmePath: rt.nvmeOffload.path,
        nvmeWorkers: rt.nvmeOffload.workers,
        nvmeQueueDepth: rt.nvmeOffload.queueDepth,
        speculative: rt.speculativeDecoding.enabled
          ? { draftModelPath: rt.speculativeDecoding.draftModel, maxPrefillTokens: rt.speculativeDecoding.maxPrefillTokens, chunkSize: rt.speculativeDecoding.chunkSize }
          : null,
      });
      if (ready.protocolVersion !== PROTOCOL_VERSION) {
        throw new Error(`engine speaks protocol ${ready.protocolVersion}, main speaks ${PROTOCOL_VERSION}`);
      }
      handle.ready = ready;
      this.failed.delete(model.id);
      await this.link(handle);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      this.failed.set(model.id, msg);
      this.log(`engine ${model.id}#${index} failed to start: ${msg}`);
      handle.stopping = true;
      await this.endFailedWorker(handle);
    }
  }

  /**
   * A worker whose start failed ends its own thread: told to close its port, it exits once its
   * native work has settled. Terminating it instead can abort the whole process: a llama.cpp
   * async task the failed load left pending (node-llama-cpp's AsyncWorker) completes into the
   * dying environment and node-addon-api throws out of it (`terminate called after throwing an
   * instance of 'Napi::Error'`, reproduced with 4 workers failing loads: 3 of 3 runs). Terminated
   * only if it is still there after FAILED_EXIT_MS.
   */
  private async endFailedWorker(e: EngineHandle): Promise<void> {
    if (e.worker.threadId === -1) return; // already gone
    const t0 = performance.now();
    const exited = new Promise<boolean>((resolve) => e.worker.once('exit', () => resolve(true)));
    e.rpc.release().catch(() => undefined);
    const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), FAILED_EXIT_MS).unref());
    if (await Promise.race([exited, timedOut])) {
      this.log(`engine ${e.model.id}#${e.index} ended its thread after its failed start (${Math.round(performance.now() - t0)} ms)`);
      return;
    }
    this.log(`engine ${e.model.id}#${e.index} did not exit ${FAILED_EXIT_MS} ms after its failed start; terminating it`);
    await e.worker.terminate();
  }

  /** Connect an engine to the (current) scheduler with a fresh link channel. */
  private async link(e: EngineHandle): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    await e.rpc.attach(Comlink.transfer(port1, [port1 as never]));
    const active = (await e.rpc.status()).active;
    this.toScheduler(
      [T.EngineUp, { model: e.model.id, worker: e.index, sequences: this.config.runtime.sequencesPerWorker, active, role: e.role }],
      port2,
    );
  }

  /** The lowest core-budget slot no engine holds. */
  private freeCoreSlot(): number {
    const taken = new Set(this.engines.map((e) => e.coreSlot));
    let slot = 0;
    while (taken.has(slot)) slot++;
    return slot;
  }

  private onEngineExit(e: EngineHandle, code: number): void {
    // Whatever threads the dead worker held go back to the others (its thread is gone: no race).
    reclaimCoreSlot(this.coreBudget, e.coreSlot);
    const wasReady = e.ready !== null;
    e.ready = null;
    if (this.stopping || e.stopping || this.stoppingModels.has(e.model.id)) return;
    this.toScheduler([T.EngineDown, { model: e.model.id, worker: e.index, role: e.role }]);
    this.log(`engine ${e.role} ${e.model.id}#${e.index} exited (code ${code})${wasReady ? '; restarting' : ''}`);
    // Only restart workers that had reached Ready: one that dies while starting would loop.
    if (!wasReady) return;
    const pool = e.role === 'prefill' ? 'prefill' : 'decode';
    this.restarts[pool]++;
    this.metrics.workerRestarts.inc({ pool });
    void this.spawnEngine(e.model, e.role, e.index, this.engines.indexOf(e));
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
