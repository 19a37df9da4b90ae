/**
 * Engine worker shell: one llama.cpp context of N sequences, driven one batch per step.
 *
 * Frames in: Admit/Suspend/Ship from the scheduler on the link port (the request's MessagePort
 * rides in the transfer list); Cancel/Pause/Resume from the main thread on each request port.
 * Frames out: Started/Text/Done/Fail on the request port (straight to the main thread, no hop
 * through the scheduler); Released/Suspended/Handoff/Progress/Resident on the link port.
 * Control (init, status, shutdown, cache admin) is comlink RPC on `parentPort`.
 *
 * Every native operation on the context (decode, trim, save, load) runs in the loop between
 * steps, never concurrently with a batch. This file is longer than most because it is the
 * one place that sequences those operations; the decisions live in core.ts (pure), sampling in
 * sampler.ts, the prefix tiers in kv-tier.ts and the disaggregated hand-off in handoff.ts.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { exposeRpc } from '../rpc.js';
import { LlamaLogLevel, getLlama, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import { InferFluxError } from '../../errors.js';
import {
  PROTOCOL_VERSION,
  T,
  postFrame,
  unpack,
  type AdmitBody,
  type EngineInit,
  type Envelope,
  type EngineReady,
  type EngineStatus,
  type OnRequestPortFromEngine,
  type OnRequestPortToEngine,
  type RequestId,
  type ToEngine,
} from '../protocol.js';
import { BatchContext } from '../../runtime/llama/batch-adapter.js';
import { EngineCore, type Emission } from './core.js';
import { LlamaSlotSampler, samplerConfig } from './sampler.js';
import { prefixBlocks } from '../../runtime/prefix/block-hash.js';
import type { PrefixHit } from '../../runtime/prefix/prefix-cache.js';
import { KvTier } from './kv-tier.js';
import { KvHandoff } from './handoff.js';

const now = (): number => performance.timeOrigin + performance.now();

/** Steps between generated-token reports to the scheduler (fair share needs no per-token message). */
const PROGRESS_EVERY_STEPS = 8;
/** How long a decode worker waits for a hand-off's ring frame before prefilling the prompt itself. */
const HANDOFF_WAIT_MS = 10_000;
/** Suspended requests' KV state is saved here: tmpfs where available, so it is memory, not disk. */
const STATE_DIR = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

class EngineShell {
  private llama!: Llama;
  private model!: LlamaModel;
  private context!: LlamaContext;
  private batch!: BatchContext;
  private core!: EngineCore<MessagePort>;
  private eog!: Uint32Array;
  private samplers = new Map<RequestId, LlamaSlotSampler>();
  /**
   * Admits wait here until the loop is between steps: trimming or loading a sequence's KV while a
   * batch is decoding on the libuv pool would race with llama.cpp on the same context.
   */
  private readonly admits: { req: AdmitBody; port: MessagePort; since: number }[] = [];
  /** Generated tokens per request not yet reported to the scheduler (fair-share accounting). */
  private readonly unreported = new Map<RequestId, number>();
  private stepsSinceProgress = 0;
  /** A sequence's resident tokens changed since the scheduler last heard (a request ended or left). */
  private residentChanged = false;
  /** Forget idle sequences' prefixes at the next step boundary (admin flush). */
  private flushRequested = false;
  /** Disaggregated mode: this worker's end of the KV hand-off rings. */
  private handoff!: KvHandoff;
  private wake: (() => void) | null = null;
  private stopping = false;
  private loopDone: Promise<void> = Promise.resolve();
  private init!: EngineInit;

  /** Host page pool + disk tier for prefixes evicted from sequences (null when disabled). */
  private kv: KvTier | null = null;
  /** Link to the scheduler; replaced when the scheduler restarts. */
  private link: MessagePort | null = null;

  async start(init: EngineInit): Promise<EngineReady> {
    this.init = init;
    this.llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: init.threads });
    this.model = await this.llama.loadModel({ modelPath: init.modelPath, useMmap: true, gpuLayers: 0 });
    this.context = await this.model.createContext({
      contextSize: init.contextSize,
      sequences: init.sequences,
      batchSize: init.batchSize,
      threads: init.threads,
    });
    this.batch = new BatchContext(this.llama, this.model, this.context);
    // Not on decode workers: prompts are prefilled, and their prefixes cached, on prefill workers.
    // A tier here would never be read, and its snapshots would sit on the hand-off's critical
    // path (saving a 2k-token state takes ~80 ms).
    if (init.kvCpuPages > 0 && init.role !== 'decode') {
      this.kv = await KvTier.open(this.batch, {
        model: init.model,
        modelPath: init.modelPath,
        worker: init.worker,
        sequences: init.sequences,
        contextSize: init.contextSize,
        cpuPages: init.kvCpuPages,
        eviction: init.kvEviction,
        diskPath: init.nvmePath,
        diskWorkers: init.nvmeWorkers,
        diskQueueDepth: init.nvmeQueueDepth,
        stateDir: STATE_DIR,
      });
    }
    const vocabSize = vocabSizeOf(this.model);
    const eog: number[] = [];
    for (let t = 0; t < vocabSize; t++) if (this.model.isEogToken(t as never)) eog.push(t);
    this.eog = Uint32Array.from(eog);
    const eogSet = new Set(eog);
    this.core = new EngineCore<MessagePort>({
      sequences: init.sequences,
      contextSize: init.contextSize,
      batchSize: this.context.batchSize,
      prefillChunk: Math.min(init.prefillChunk, this.context.batchSize),
      prefillChunkDecoding: Math.min(init.prefillChunkDecoding, init.prefillChunk, this.context.batchSize),
      detokenize: (tokens, last) => this.model.detokenize(tokens as never[], false, last as never[]),
      isEog: (t) => eogSet.has(t),
      handoffAfterFirstToken: init.role === 'prefill',
    });
    this.handoff = new KvHandoff(init.role, () => this.wake?.());
    this.handoff.setRings(init.rings);
    this.loopDone = this.loop();
    const info = this.model.fileInfo;
    return {
      protocolVersion: PROTOCOL_VERSION,
      model: init.model,
      worker: init.worker,
      sequences: init.sequences,
      contextSize: init.contextSize,
      vocabSize,
      trainContextSize: this.model.trainContextSize,
      architecture: String(info.metadata.general?.architecture ?? 'unknown'),
      parameterCount: this.model.fileInsights.totalParameters ?? 0,
    };
  }

  /** (Re)connect to the scheduler. In-flight requests carry on; their releases go to the new link. */
  attach(link: MessagePort): void {
    this.link?.close();
    this.link = link;
    link.on('message', (env: Envelope) => this.onLink(env));
  }

  status(): EngineStatus {
    return { ...this.core.status(), ...this.handoff.counters() };
  }

  /** KV rings of the decode workers (prefill role), or this worker's own (decode role). */
  setRings(rings: SharedArrayBuffer[]): void {
    this.handoff.setRings(rings);
  }




  async shutdown(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loopDone;
    this.post(this.core.drain(now()));
    this.handoff.close();
    // Let queued disk spills land so the disk tier is warm after a restart.
    await this.kv?.close().catch(() => undefined);
    await this.disposeNative();
  }

  cacheStatus(): { worker: number; cache: ReturnType<KvTier['status']> | null; resident: number[] } {
    const resident: number[] = [];
    for (let seq = 0; seq < this.init.sequences; seq++) resident.push(this.core.residentTokens(seq).length);
    return { worker: this.init.worker, cache: this.kv?.status() ?? null, resident };
  }

  /** Drop every cached prefix: the cache tiers and what idle sequences hold (admin flush). */
  async flushCache(): Promise<number> {
    this.flushRequested = true;
    this.wake?.();
    const removed = (await this.kv?.flush())?.removed ?? 0;
    return removed;
  }

  /**
   * An uncaught error in this worker. Ending the thread while llama.cpp objects are alive aborts
   * the whole process, so: let the current step finish, fail every running request with
   * `worker_crashed`, dispose the native objects, and only then exit (the supervisor restarts us).
   */
  async crash(err: unknown): Promise<never> {
    process.stderr.write(`engine worker fault: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    this.stopping = true;
    this.wake?.();
    await Promise.race([this.loopDone.catch(() => undefined), delay(2000)]);
    if (this.core) {
      for (const e of this.core.drain(now())) {
        if (e.kind !== 'done') continue;
        this.fail(e.ref, new InferFluxError('worker_crashed', undefined, { retryAfter: 1 }));
      }
    }
    await this.disposeNative().catch(() => undefined);
    process.exit(1);
  }

  /** Test hook for supervision tests: an asynchronous uncaught error, like a real bug would throw. */
  injectFault(): void {
    setImmediate(() => {
      throw new Error('injected fault');
    });
  }

  private async disposeNative(): Promise<void> {
    await this.context?.dispose();
    await this.model?.dispose();
    await this.llama?.dispose();
  }

  private onLink(env: Envelope): void {
    const frame = unpack<ToEngine>(env.f);
    switch (frame[0]) {
      case T.Admit:
        if (this.stopping) {
          this.fail(env.port!, new InferFluxError('shutting_down'));
          break;
        }
        this.admits.push({ req: frame[1], port: env.port!, since: Date.now() });
        this.wake?.();
        break;
      case T.Suspend:
        if (this.core.suspend(frame[1])) this.wake?.();
        break;
      case T.Ship:
        void this.handoff.ship(frame[1].ticket, frame[1].to);
        break;
      default: {
        const never: never = frame[0];
        throw new Error(`engine: unknown link frame ${String(never)}`);
      }
    }
  }

  /**
   * Admits whose KV is here: everything but hand-offs whose ring frame has not arrived yet (they
   * wait without holding up the loop, and fall back to a full prefill after HANDOFF_WAIT_MS).
   */
  private readyAdmits(): { req: AdmitBody; port: MessagePort }[] {
    const ready: { req: AdmitBody; port: MessagePort }[] = [];
    for (let i = 0; i < this.admits.length; ) {
      const a = this.admits[i]!;
      if (this.isReady(a)) {
        ready.push(a);
        this.admits.splice(i, 1);
      } else i++;
    }
    return ready;
  }

  private isReady(a: { req: AdmitBody; since: number }): boolean {
    const ring = a.req.resume?.ring;
    return !ring || this.handoff.has(ring.ticket) || Date.now() - a.since > HANDOFF_WAIT_MS;
  }

  /** Runs between steps only (see `admits`). */
  private async admit(req: AdmitBody, port: MessagePort): Promise<void> {
    // A resumed request's repetition penalties see the tokens it generated before suspension.
    const history = req.resume ? req.tokens.slice(req.resume.promptTokens) : [];
    const sampler = new LlamaSlotSampler(this.batch.createSampler(), samplerConfig(req, history), this.eog, history);
    // The sequence about to be reused may hold a prefix worth keeping: save it to the cache first.
    const preview = this.core.preview(req.tokens);
    if (this.kv && preview && preview.resident.length > preview.keep) {
      // Snapshot the previous request's prompt, not what it generated: the next turn of a chat
      // starts with that prompt, while its reply comes back re-rendered by the chat template.
      // The new request drops those generated cells anyway unless it continues into them.
      let upto = preview.resident.length;
      if (preview.keep <= preview.residentPrompt && preview.residentPrompt < upto) {
        upto = preview.residentPrompt;
        this.batch.trimSequence(preview.seq, upto);
        this.core.truncateResident(preview.seq, upto);
      }
      await this.kv.keep(preview.seq, preview.resident.slice(0, upto));
    }
    const admitted = this.core.admit(req, port, sampler, now());
    if (!admitted) {
      sampler.dispose();
      this.fail(port, new InferFluxError('queue_full', 'No free sequence on this engine worker.', { retryAfter: 1 }));
      this.released(req.id, 0);
      return;
    }
    // Keep the reused prefix's KV cells, drop everything after it (the previous request's tail).
    this.batch.trimSequence(admitted.seq, admitted.keep);
    this.samplers.set(req.id, sampler);
    this.listen(req.id, port);
    const r = req.resume;
    if (r?.ring) {
      const got = this.handoff.take(r.ring.ticket);
      if (got === undefined) {
        process.stderr.write(`engine: hand-off ${r.ring.ticket} never arrived; prefilling the prompt here\n`);
        return;
      }
      let file: string;
      if (typeof got === 'string') file = got;
      else {
        file = join(STATE_DIR, `ifx-${process.pid}-${this.init.worker}-${r.ring.ticket}.kvstate`);
        await writeFile(file, got);
      }
      if (admitted.keep < r.stateTokens) await this.restore(admitted.seq, file, r.stateTokens);
      this.core.markHydrated(req.id, now());
      void unlink(file).catch(() => undefined);
      return;
    }
    if (r && r.stateFile !== '') {
      if (admitted.keep < r.stateTokens) await this.restore(admitted.seq, r.stateFile, r.stateTokens);
      void unlink(r.stateFile).catch(() => undefined);
      return;
    }
    const hit = this.kv?.find(req.tokens, admitted.keep);
    if (hit) await this.restoreCached(admitted.seq, hit, req.tokens.length);
  }

  /** Load a cached prefix into a just-admitted request's sequence; on failure it is prefilled. */
  private async restoreCached(seq: number, hit: PrefixHit, promptLen: number): Promise<void> {
    this.core.lock(seq);
    try {
      const got = await this.kv!.load(seq, hit);
      const keep = Math.min(got, hit.length, promptLen - 1);
      this.batch.trimSequence(seq, keep);
      this.core.unlock(seq, keep);
    } catch (err) {
      process.stderr.write(`engine: could not load cached prefix (${String(err)}); prefilling\n`);
      this.batch.clearSequence(seq);
      this.core.forgetResident(seq);
      this.core.unlock(seq);
    }
  }

  /** Load a suspended request's KV; on failure the sequence is cleared and simply prefilled again. */
  private async restore(seq: number, file: string, tokens: number): Promise<void> {
    this.core.lock(seq);
    try {
      this.batch.clearSequence(seq);
      const got = await this.batch.loadSequence(seq, file, this.init.contextSize);
      this.core.unlock(seq, Math.min(got.length, tokens));
    } catch (err) {
      process.stderr.write(`engine: could not restore suspended state (${String(err)}); prefilling again\n`);
      this.batch.clearSequence(seq);
      this.core.forgetResident(seq);
      this.core.unlock(seq);
    }
  }

  /** Save suspended requests' KV to tmpfs and hand them back to the scheduler with their ports. */
  private async suspendReaped(): Promise<void> {
    for (const s of this.core.reapSuspended()) {
      this.core.lock(s.seq);
      const file = join(STATE_DIR, `ifx-${process.pid}-${this.init.worker}-${randomUUID()}.kvstate`);
      try {
        await this.batch.saveSequence(s.seq, s.kvTokens, file);
        s.body.resume!.stateFile = file;
      } catch (err) {
        // Without a saved state the request is prefilled again on resume: slower, still correct.
        process.stderr.write(`engine: could not save suspended state (${String(err)})\n`);
      }
      this.core.unlock(s.seq);
      this.samplers.delete(s.id);
      s.ref.removeAllListeners('message');
      s.ref.removeAllListeners('close');
      const generated = this.unreported.get(s.id) ?? 0;
      this.unreported.delete(s.id);
      const r = s.body.resume!;
      if (this.init.role === 'prefill' && r.generated > 0 && r.stateFile !== '') {
        // Disaggregated hand-off: the state waits here until the scheduler has placed the request
        // on a decode worker and says which ring to write it into (Ship).
        const ticket = randomUUID();
        this.handoff.hold(ticket, r.stateFile);
        r.ring = { ticket, from: this.init.worker, to: -1, handoffAt: now() };
        r.stateFile = '';
        if (this.link) postFrame(this.link, [T.Handoff, { body: s.body, generated }], s.ref);
      } else if (this.link) {
        postFrame(this.link, [T.Suspended, { body: s.body, generated }], s.ref);
      }
      this.residentChanged = true;
    }
    if (this.residentChanged) this.reportResident();
  }

  private forgetIdleSequences(): void {
    this.flushRequested = false;
    for (let seq = 0; seq < this.init.sequences; seq++) {
      if (this.core.requestAt(seq) !== undefined) continue;
      this.batch.clearSequence(seq);
      this.core.forgetResident(seq);
    }
    this.reportResident();
  }

  /** Tell the scheduler which prefixes the sequences hold, so it can place requests where their KV is. */
  private reportResident(): void {
    this.residentChanged = false;
    if (!this.link) return;
    const prints: number[][] = [];
    for (let seq = 0; seq < this.init.sequences; seq++) {
      const blocks = prefixBlocks(this.core.residentTokens(seq));
      if (blocks.length > 0) prints.push(blocks);
    }
    postFrame(this.link, [T.Resident, prints]);
  }

  private listen(id: RequestId, port: MessagePort): void {
    port.on('message', (env: Envelope) => {
      const f = unpack<OnRequestPortToEngine>(env.f);
      switch (f[0]) {
        case T.Cancel:
          this.core.cancel(id);
          break;
        case T.Pause:
          this.core.setPaused(id, true);
          break;
        case T.Resume:
          this.core.setPaused(id, false);
          break;
        default: {
          const never: never = f[0];
          throw new Error(`engine: unknown request frame ${String(never)}`);
        }
      }
      this.wake?.();
    });
    // The main thread closing its end means the client is gone for good.
    port.on('close', () => {
      this.core.cancel(id);
      this.wake?.();
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.post(this.core.reapCancelled(now()));
      await this.suspendReaped();
      if (this.flushRequested) this.forgetIdleSequences();
      for (const a of this.readyAdmits()) await this.admit(a.req, a.port);
      const plan = this.core.plan(now());
      if (plan.items.length === 0) {
        if (this.admits.some((a) => this.isReady(a))) continue;
        // Hand-offs waiting for their ring frame must still fall back when their wait runs out.
        const timer = this.admits.length > 0 ? setTimeout(() => this.wake?.(), 250) : null;
        await new Promise<void>((resolve) => (this.wake = resolve));
        if (timer) clearTimeout(timer);
        this.wake = null;
        continue;
      }
      const items = plan.items;
      const logitIndexes = await this.batch.decode(items);
      const sampled = new Int32Array(items.length).fill(-1);
      const draws: Promise<void>[] = [];
      for (let i = 0; i < items.length; i++) {
        const idx = logitIndexes[i]!;
        if (idx < 0) continue;
        const sampler = this.samplers.get(this.requestIdAt(items[i]!.slot))!;
        draws.push(
          this.batch.sample(idx, sampler.native).then((tok) => {
            sampled[i] = tok;
            sampler.record(tok);
          }),
        );
      }
      await Promise.all(draws);
      this.post(this.core.apply(plan, sampled, now()));
      if (this.residentChanged) this.reportResident();
      if (++this.stepsSinceProgress >= PROGRESS_EVERY_STEPS) this.reportProgress();
      // Let port messages (admits, cancels) in before the next step.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private requestIdAt(seq: number): RequestId {
    return this.core.requestAt(seq)!;
  }

  private post(emissions: Emission<MessagePort>[]): void {
    for (const e of emissions) {
      switch (e.kind) {
        case 'started':
          send(e.ref, [T.Started, { queueMs: e.queueMs }]);
          break;
        case 'text':
          send(e.ref, [T.Text, e.text, e.tokens]);
          if (e.tokens > 0) this.unreported.set(e.id, (this.unreported.get(e.id) ?? 0) + e.tokens);
          break;
        case 'done':
          send(e.ref, [T.Done, e.reason, e.stats]);
          e.ref.close();
          // The sequence keeps its KV cells: the next request may share their prefix.
          this.samplers.delete(e.id);
          this.released(e.id, this.unreported.get(e.id) ?? 0);
          this.unreported.delete(e.id);
          this.residentChanged = true;
          break;
        default: {
          const never: never = e;
          throw new Error(`engine: unknown emission ${String(never)}`);
        }
      }
    }
  }

  private released(id: RequestId, generated: number): void {
    if (this.link) postFrame(this.link, [T.Released, id, generated]);
  }

  /** Tell the scheduler how many tokens each running request generated (tenant fair share, timeslices). */
  private reportProgress(): void {
    this.stepsSinceProgress = 0;
    if (this.unreported.size === 0 || !this.link) return;
    const pairs: (RequestId | number)[] = [];
    for (const [id, n] of this.unreported) pairs.push(id, n);
    this.unreported.clear();
    postFrame(this.link, [T.Progress, pairs]);
  }

  private fail(port: MessagePort, err: InferFluxError): void {
    send(port, [T.Fail, err.toWire()]);
    port.close();
  }
}

function send(port: MessagePort, frame: OnRequestPortFromEngine): void {
  postFrame(port, frame);
}

function vocabSizeOf(model: LlamaModel): number {
  const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  if (Array.isArray(tokens)) return tokens.length;
  throw new Error('model has no tokenizer.ggml.tokens');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const shell = new EngineShell();
let crashing = false;
const onFault = (err: unknown): void => {
  if (crashing) return;
  crashing = true;
  void shell.crash(err);
};
process.on('uncaughtException', onFault);
process.on('unhandledRejection', onFault);

const api = {
  start: (init: EngineInit) => shell.start(init),
  attach: (link: MessagePort) => shell.attach(link),
  status: () => shell.status(),
  shutdown: () => shell.shutdown(),
  cacheStatus: () => shell.cacheStatus(),
  setRings: (rings: SharedArrayBuffer[]) => shell.setRings(rings),
  flushCache: () => shell.flushCache(),
  injectFault: () => {
    if (process.env.INFERFLUX_FAULT_INJECTION !== '1') throw new Error('fault injection is disabled');
    shell.injectFault();
  },
  /**
   * Test hook: what a failed GGML_ASSERT in this thread does, abort(3), which raises SIGABRT for
   * the whole process (`process.abort()` itself is refused in worker threads).
   */
  injectAbort: () => {
    if (process.env.INFERFLUX_FAULT_INJECTION !== '1') throw new Error('fault injection is disabled');
    process.kill(process.pid, 'SIGABRT');
  },
};
export type EngineApi = typeof api;
exposeRpc(api, parentPort!);
