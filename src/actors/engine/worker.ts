/**
 * Engine worker shell: the thread's messaging around one llama.cpp context of N sequences.
 *
 * Frames in: Admit/Suspend/Ship from the scheduler on the link port (the request's MessagePort
 * rides in the transfer list); Cancel/Pause/Resume from the main thread on each request port.
 * Frames out: Started/Text/Done/Fail on the request port (straight to the main thread, no hop
 * through the scheduler); Released/Suspended/Handoff/Progress/Resident on the link port.
 * Control (init, status, shutdown, cache admin) is comlink RPC on `parentPort`.
 *
 * The other jobs live next door: native bring-up and disposal (bootstrap.ts), the step loop
 * (step-loop.ts), KV moves in and out of sequences (kv-moves.ts), the decisions (core.ts, pure),
 * sampling (sampler.ts), the prefix tiers (kv-tier.ts) and the disaggregated hand-off (handoff.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readGgufHeader, type GgufInfo } from '../../runtime/gguf/reader.js';
import { validateLoraFile } from '../../runtime/gguf/lora.js';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { exposeRpc } from '../rpc.js';
import { InferFluxError } from '../../errors.js';
import {
  T,
  postFrame,
  unpack,
  type AdapterRef,
  type AdmitBody,
  type EngineInit,
  type Envelope,
  type EngineReady,
  type EngineStatus,
  type OnRequestPortFromEngine,
  type OnRequestPortToEngine,
  type RequestId,
  type ToEngine,
  type WireLogprob,
} from '../protocol.js';
import { toNativeSamplerConfig } from '../../runtime/llama/sampler-config.js';
import { blockSalt, prefixBlocks } from '../../runtime/prefix/block-hash.js';
import { STATE_DIR, disposeNativeEngine, loadNativeEngine, type NativeEngine } from './bootstrap.js';
import type { GrammarState, NativeGrammar, SampledLogprobs } from '../../runtime/llama/batch-adapter.js';
import { EngineCore, saltOf, type Emission, type StepPlan } from './core.js';
import { AdapterGate, keyOf } from './adapter-gate.js';
import { KvHandoff } from './handoff.js';
import { componentLog } from '../../log/logger.js';
import { KvMoves } from './kv-moves.js';
import { KvTier } from './kv-tier.js';
import { LlamaSlotSampler } from './sampler.js';
import { Speculator } from './speculator.js';
import { StepLoop } from './step-loop.js';
import { CoreClaims, MAX_ENGINE_SLOTS } from '../core-budget.js';

const now = (): number => performance.timeOrigin + performance.now();
/** Host pages an idle worker primes at a time: 2 MiB, ~6 ms on a 2-core VM (the most an admission arriving meanwhile waits). */
const PRIME_PAGES_PER_IDLE = 8;

/** Steps between generated-token reports to the scheduler (fair share needs no per-token message). */
const PROGRESS_EVERY_STEPS = 8;
/** Parsed grammars kept per worker (llama.cpp parses one in about 1 ms; schemas repeat across requests). */
const GRAMMARS_KEPT = 32;
/** How long a decode worker waits for a hand-off's ring frame before prefilling the prompt itself. */
const HANDOFF_WAIT_MS = 10_000;
/**
 * Longest an admission waits for a running prefill of its prompt's prefix (EngineCore.prefixPending)
 * before prefilling that prefix itself. That prefill runs every step, so the wait normally ends
 * sooner; this only bounds it should that ever stall.
 */
const SHARED_PREFIX_WAIT_MS = 30_000;

/** A request placed on this worker, waiting for the loop to be between steps. */
interface Admission {
  req: AdmitBody;
  port: MessagePort;
  /** Date.now() when it arrived. */
  since: number;
}

const log = componentLog('engine');

class EngineShell {
  /** Native objects as far as they exist (a failed start disposes what was made). */
  private readonly native: Partial<NativeEngine> = {};
  private core!: EngineCore<MessagePort>;
  private loop!: StepLoop;
  private moves!: KvMoves;
  private samplers = new Map<RequestId, LlamaSlotSampler>();
  /**
   * Admits wait here until the loop is between steps: trimming or loading a sequence's KV while a
   * batch is decoding on the libuv pool would race with llama.cpp on the same context.
   */
  private readonly admits: Admission[] = [];
  /** The LoRA adapter the context runs, and which admits may start under it (adapter-gate.ts). */
  private readonly gate = new AdapterGate();
  /** Adapter files this worker's model has loaded (checked first, see loadAdapter). */
  private readonly adapterFiles = new Set<string>();
  private baseHeader: GgufInfo | null = null;
  /** Parsed grammars by GBNF text, least recently used first (see grammarState). */
  private readonly grammars = new Map<string, NativeGrammar>();
  /** An ordinary token to detokenize single tokens after (see afterStep). */
  private pieceContext: number[] = [];
  /** Log probabilities of sampled tokens not yet sent, per request (requests that asked for them). */
  private readonly logprobs = new Map<RequestId, WireLogprob[]>();
  /** Generated tokens per request not yet reported to the scheduler (fair-share accounting). */
  private readonly unreported = new Map<RequestId, number>();
  private stepsSinceProgress = 0;
  /**
   * What the last step produced, not yet posted: the step loop flushes it once the next decode is
   * running on the libuv pool, so posting (packing, postMessage, waking the main thread) overlaps
   * llama.cpp's work instead of adding to every step. Anything else that posts flushes it first,
   * so a request's frames keep their order.
   */
  private deferred: Emission<MessagePort>[] = [];
  /** A sequence's resident tokens changed since the scheduler last heard (a request ended or left). */
  private residentChanged = false;
  /** Forget idle sequences' prefixes at the next step boundary (admin flush). */
  private flushRequested = false;
  /** Disaggregated mode: this worker's end of the KV hand-off rings. */
  private handoff!: KvHandoff;
  private stopping = false;
  private init!: EngineInit;
  private speculator: Speculator | null = null;

  /** Host page pool + disk tier for prefixes evicted from sequences (null when disabled). */
  private kv: KvTier | null = null;
  /** Link to the scheduler; replaced when the scheduler restarts. */
  private link: MessagePort | null = null;

  async start(init: EngineInit): Promise<EngineReady> {
    this.init = init;
    const native = await loadNativeEngine(init, this.native);
    // Not on decode workers: prompts are prefilled, and their prefixes cached, on prefill workers.
    // A tier here would never be read, and its snapshots would sit on the hand-off's critical
    // path (saving a 2k-token state takes ~80 ms).
    if (init.kvCpuPages > 0 && init.role !== 'decode') {
      this.kv = await KvTier.open(native.batch, {
        model: init.model,
        modelPath: init.modelPath,
        worker: init.worker,
        sequences: init.sequences,
        contextSize: init.contextSize,
        flashAttention: init.flashAttention,
        metalLayers: init.metalLayers,
        cpuPages: init.kvCpuPages,
        eviction: init.kvEviction,
        diskPath: init.nvmePath,
        diskWorkers: init.nvmeWorkers,
        diskQueueDepth: init.nvmeQueueDepth,
        stateDir: STATE_DIR,
      });
    }
    const eogSet = new Set(native.eog);
    this.pieceContext = native.model.tokenize('a', false) as number[];
    const batchSize = native.context.batchSize;
    this.core = new EngineCore<MessagePort>({
      sequences: init.sequences,
      contextSize: init.contextSize,
      batchSize,
      prefillChunk: Math.min(init.prefillChunk, batchSize),
      prefillChunkDecoding: Math.min(init.prefillChunkDecoding, init.prefillChunk, batchSize),
      detokenize: native.batch.detokenizer(),
      isEog: (t) => eogSet.has(t),
      handoffAfterFirstToken: init.role === 'prefill',
    });
    this.handoff = new KvHandoff(init.role, () => this.loop?.wake());
    this.handoff.setRings(init.rings);
    this.moves = new KvMoves(this.core, native.batch, this.kv, this.handoff, init.worker, init.contextSize, log);
    // Not on prefill workers: they sample one token per request, then hand it off.
    const speculator =
      native.draft && init.speculative && init.role !== 'prefill'
        ? new Speculator(native.draft, init.sequences, {
            maxPrefill: init.speculative.maxPrefillTokens,
            chunkSize: init.speculative.chunkSize,
            contextSize: init.contextSize,
            batchSize: native.draftContext!.batchSize,
          })
        : null;
    this.speculator = speculator;
    this.loop = new StepLoop(native.batch, {
      betweenSteps: () => this.betweenSteps(),
      plan: () => this.core.plan(now()),
      waiting: () => ({ ready: this.gate.decide(this.admits.filter((a) => this.isReady(a)), this.core.active).admit.length > 0, any: this.admits.length > 0 }),
      samplerAt: (slot) => this.samplers.get(this.core.requestAt(slot)!)!,
      apply: (plan, sampled, logprobs, more) => this.afterStep(plan, sampled, logprobs, more),
      flush: () => this.flush(),
      draftFor: (item, chunkSize) => this.core.draftRequest(item, chunkSize),
      validCells: (seq) => this.core.validCells(seq),
      whileIdle: () => this.whileIdle(),
    }, speculator, init.cores.slot < MAX_ENGINE_SLOTS ? new CoreClaims(init.cores.budget, init.cores.slot, init.threads, init.cores.spreadTokens) : null);
    this.loop.start();
    return native.ready;
  }

  /** (Re)connect to the scheduler. In-flight requests carry on; their releases go to the new link. */
  attach(link: MessagePort): void {
    this.link?.close();
    this.link = link;
    link.on('message', (env: Envelope) => this.onLink(env));
  }

  status(): EngineStatus {
    return {
      ...this.core.status(),
      ...this.handoff.counters(),
      adapter: this.gate.current,
      adapterSwaps: this.gate.swaps,
      grammarSamples: { ...(this.native.batch?.grammarSamples ?? { mask: 0, free: 0, redraw: 0, fallback: 0, llama: 0 }) },
      stepTiming: { ...this.loop.timing },
    };
  }

  /**
   * Load a LoRA adapter file into this worker's llama.cpp model (not applied until a request
   * needs it). The main thread checked the file when it was loaded; the file is read again here
   * (by a worker restarted since, or one the admin load reaches), so it is checked again against
   * this worker's model and must still have the hash the main thread saw: a file replaced in
   * place never reaches llama.cpp unchecked, nor serves under the old one's cache keys.
   */
  async loadAdapter(a: { path: string; sha256: string }): Promise<void> {
    if (this.adapterFiles.has(a.path)) return;
    const bytes = await readFile(a.path);
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== a.sha256) throw new Error(`adapter file ${a.path} changed since it was loaded (SHA-256 ${sha.slice(0, 12)}..., expected ${a.sha256.slice(0, 12)}...); load the new file under a new id`);
    this.baseHeader ??= await readGgufHeader(this.init.modelPath);
    await validateLoraFile(a.path, this.baseHeader);
    await this.native.batch!.loadLora(a.path);
    this.adapterFiles.add(a.path);
  }

  /** KV rings of the decode workers (prefill role), or this worker's own (decode role). */
  setRings(rings: SharedArrayBuffer[]): void {
    this.handoff.setRings(rings);
  }

  async shutdown(): Promise<void> {
    this.stopping = true;
    await this.loop.stop();
    const t = this.loop.timing;
    if (t.steps > 0) {
      const per = (ms: number) => (ms / t.steps).toFixed(3);
      log(
        `engine worker ${this.init.worker} step split: ${t.steps} steps, per step ms: decode ${per(t.decodeMs)}, ` +
          `sample ${per(t.sampleMs)}, apply ${per(t.applyMs)}, between ${per(t.betweenMs)}`,
      );
    }
    this.flush();
    this.post(this.core.drain(now()));
    this.handoff.close();
    // Let queued disk spills land so the disk tier is warm after a restart.
    await this.kv?.close().catch(() => undefined);
    this.speculator?.dispose();
    await disposeNativeEngine(this.native);
  }

  cacheStatus(): { worker: number; cache: ReturnType<KvTier['status']> | null; resident: number[] } {
    const resident: number[] = [];
    for (let seq = 0; seq < this.init.sequences; seq++) resident.push(this.core.residentTokens(seq).length);
    return { worker: this.init.worker, cache: this.kv?.status() ?? null, resident };
  }

  /** Drop every cached prefix: the cache tiers and what idle sequences hold (admin flush). */
  async flushCache(): Promise<number> {
    this.flushRequested = true;
    this.loop.wake();
    const removed = (await this.kv?.flush())?.removed ?? 0;
    return removed;
  }

  /**
   * An uncaught error in this worker. Ending the thread while llama.cpp objects are alive aborts
   * the whole process, so: let the current step finish, fail every running request with
   * `worker_crashed`, dispose the native objects, and only then exit (the supervisor restarts us).
   */
  async crash(err: unknown): Promise<never> {
    log.error(`engine worker fault: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    this.stopping = true;
    if (this.loop) await Promise.race([this.loop.stop().catch(() => undefined), delay(2000)]);
    // What the last step finished still reaches its clients (the fault may be posting itself).
    try {
      this.flush();
    } catch {
      /* the drain below fails those requests instead */
    }
    if (this.core) {
      for (const e of this.core.drain(now())) {
        if (e.kind !== 'done') continue;
        this.fail(e.ref, new InferFluxError('worker_crashed', undefined, { retryAfter: 1 }));
      }
    }
    await disposeNativeEngine(this.native).catch(() => undefined);
    process.exit(1);
  }

  /** Test hook for supervision tests: an asynchronous uncaught error, like a real bug would throw. */
  injectFault(): void {
    setImmediate(() => {
      throw new Error('injected fault');
    });
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
        this.loop.wake();
        break;
      case T.Suspend:
        if (this.core.suspend(frame[1])) this.loop.wake();
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
   * Idle: save the prompt the next new request would overwrite (see `KvMoves.keepNextVictim`);
   * else write a few more host pages ahead of their first snapshot (`KvTier.primeHostPages`).
   * Returns whether it did anything (the step loop then looks for work and comes back).
   */
  private async whileIdle(): Promise<boolean> {
    if (await this.moves.keepNextVictim()) {
      this.reportResident();
      return true;
    }
    if ((this.kv?.primeHostPages(PRIME_PAGES_PER_IDLE) ?? 0) === 0) return false;
    // Synchronous work: let the port's messages (an admission) in before the next chunk.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return true;
  }

  /** Between two steps: the only time the context's KV may be trimmed, saved or loaded. */
  private async betweenSteps(): Promise<void> {
    this.post(this.core.reapCancelled(now()));
    await this.suspendReaped();
    if (this.flushRequested) this.forgetIdleSequences();
    // readyAdmits checked each against the sequences as they were; once one is admitted, the
    // rest are checked again: it may have started the prefill a later one should wait for.
    const deferred: Admission[] = [];
    let admitted = false;
    for (const a of await this.readyAdmits()) {
      if (admitted && this.waitsForSharedPrefix(a)) deferred.push(a);
      else {
        await this.admit(a.req, a.port);
        admitted = true;
      }
    }
    this.admits.unshift(...deferred);
  }

  private afterStep(plan: StepPlan, sampled: Int32Array, logprobs: (SampledLogprobs | undefined)[], more: (number[] | undefined)[]): void {
    this.moves.afterDecode();
    for (let i = 0; i < logprobs.length; i++) {
      const lp = logprobs[i];
      if (!lp) continue;
      const id = this.core.requestAt(plan.items[i]!.slot);
      if (id === undefined) continue;
      // With a word before it, a token keeps its leading space (alone, the first token loses it).
      const text = (t: number) => this.native.model!.detokenize([t as never], false, this.pieceContext as never[]);
      const list = this.logprobs.get(id) ?? [];
      list.push([text(lp.token), lp.logprob, lp.top.map(([t, p]) => [text(t), p])]);
      this.logprobs.set(id, list);
    }
    const emissions = this.core.apply(plan, sampled, now(), more);
    if (this.deferred.length === 0) this.deferred = emissions;
    else for (const e of emissions) this.deferred.push(e);
    this.stepsSinceProgress++;
  }

  /** Post what the last step produced (see `deferred`), then the scheduler's reports it changed. */
  private flush(): void {
    if (this.deferred.length > 0) {
      const emissions = this.deferred;
      this.deferred = [];
      this.post(emissions);
    }
    if (this.residentChanged) this.reportResident();
    if (this.stepsSinceProgress >= PROGRESS_EVERY_STEPS) this.reportProgress();
  }

  /**
   * Admits whose KV is here: everything but hand-offs whose ring frame has not arrived yet (they
   * wait without holding up the loop, and fall back to a full prefill after HANDOFF_WAIT_MS).
   */
  private async readyAdmits(): Promise<Admission[]> {
    const decision = this.gate.decide(this.admits.filter((a) => this.isReady(a)), this.core.active);
    if (decision.swap !== undefined && !(await this.swapAdapter(decision.swap))) return [];
    for (const a of decision.admit) this.admits.splice(this.admits.indexOf(a), 1);
    return decision.admit;
  }

  /**
   * Between steps with no sequence running: apply `to` (null = base) to the context and forget
   * every sequence's KV and the prefixes they advertise, all computed under the old adapter.
   * If llama.cpp cannot apply it, the admits waiting for it fail (others keep their turn).
   */
  private async swapAdapter(to: AdapterRef | null): Promise<boolean> {
    const key = to?.key ?? '';
    try {
      if (to) await this.loadAdapter(to);
      await this.native.batch!.setLoras(to ? [{ filePath: to.path, scale: to.scale }] : []);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      log.error(`engine worker ${this.init.worker}: cannot apply LoRA adapter ${to?.path ?? '(base)'}: ${why}`);
      for (const a of this.admits.filter((x) => keyOf(x.req) === key)) {
        this.admits.splice(this.admits.indexOf(a), 1);
        this.fail(a.port, new InferFluxError('invalid_adapter_file', `llama.cpp could not apply the adapter: ${why}`));
        this.released(a.req.id, 0);
      }
      return false;
    }
    this.gate.swapped(key);
    this.kv?.setAdapter(to ? key : null);
    this.forgetIdleSequences();
    return true;
  }

  private isReady(a: Admission): boolean {
    const ring = a.req.resume?.ring;
    if (ring) return this.handoff.has(ring.ticket) || Date.now() - a.since > HANDOFF_WAIT_MS;
    return !this.waitsForSharedPrefix(a);
  }

  /**
   * A fresh request whose prompt starts like one a running request is prefilling here waits for
   * that prefill, then copies it (KvMoves.hydrate) instead of evaluating the same tokens again.
   */
  private waitsForSharedPrefix(a: Admission): boolean {
    if (a.req.resume || keyOf(a.req) !== this.gate.current || Date.now() - a.since > SHARED_PREFIX_WAIT_MS) return false;
    const salt = saltOf(a.req);
    return this.core.prefixPending(a.req.tokens, salt, () => this.moves.cachedLength(a.req.tokens, salt));
  }

  /** Runs between steps only (see `admits`). */
  private async admit(req: AdmitBody, port: MessagePort): Promise<void> {
    // A resumed request's repetition penalties see the tokens it generated before suspension.
    const history = req.resume ? req.tokens.slice(req.resume.promptTokens) : [];
    const batch = this.native.batch!;
    let grammar: GrammarState | null = null;
    try {
      grammar = req.sampling.grammar === null ? null : this.grammarState(req.sampling.grammar, history);
    } catch (err) {
      this.fail(port, InferFluxError.from(err));
      this.released(req.id, 0);
      return;
    }
    const native = batch.createSampler();
    const sampler = new LlamaSlotSampler(
      native,
      toNativeSamplerConfig(req.sampling, history),
      this.native.eog!,
      history,
      req.sampling.logprobs,
      grammar ? (cfg) => batch.applySamplerConfig(native, cfg, grammar, { masks: req.sampling.logprobs === null }) : undefined,
    );
    // The sequence about to be reused may hold a prefix worth keeping: save it to the cache first.
    await this.moves.keepReusedPrefix(req);
    const admitted = this.core.admit(req, port, sampler, now());
    if (!admitted) {
      sampler.dispose();
      this.fail(port, new InferFluxError('queue_full', 'No free sequence on this engine worker.', { retryAfter: 1 }));
      this.released(req.id, 0);
      return;
    }
    // Keep the reused prefix's KV cells, drop everything after it (the previous request's tail).
    batch.trimSequence(admitted.seq, admitted.keep);
    this.samplers.set(req.id, sampler);
    this.listen(req.id, port);
    await this.moves.hydrate(req, admitted);
  }

  /**
   * A fresh grammar state for a request, advanced past the tokens it already generated (a
   * suspended or handed-off request resuming here: states cannot cross threads, so they are
   * rebuilt by replaying). Parsed grammars are shared by requests with the same GBNF.
   */
  private grammarState(gbnf: string, generated: readonly number[]): GrammarState {
    const batch = this.native.batch!;
    let parsed = this.grammars.get(gbnf);
    if (parsed) this.grammars.delete(gbnf);
    else parsed = batch.createGrammar(gbnf);
    this.grammars.set(gbnf, parsed);
    if (this.grammars.size > GRAMMARS_KEPT) this.grammars.delete(this.grammars.keys().next().value!);
    const state = batch.createGrammarState(parsed);
    for (const t of generated) state.accept(t);
    return state;
  }

  /** Save suspended requests' KV to tmpfs and hand them back to the scheduler with their ports. */
  private async suspendReaped(): Promise<void> {
    const reaped = this.core.reapSuspended();
    // Their ports move to the scheduler below: what the engine still owes them goes out first.
    if (reaped.length > 0) this.flush();
    for (const s of reaped) {
      s.body.resume!.stateFile = await this.moves.saveSuspended(s);
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
      this.native.batch!.clearSequence(seq);
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
      const blocks = prefixBlocks(this.core.residentTokens(seq), blockSalt(this.gate.current, this.core.residentSaltOf(seq)));
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
      this.loop.wake();
    });
    // The main thread closing its end means the client is gone for good.
    port.on('close', () => {
      this.core.cancel(id);
      this.loop.wake();
    });
  }

  private post(emissions: Emission<MessagePort>[]): void {
    if (emissions.length > 0 && this.deferred.length > 0) this.flush();
    for (const e of emissions) {
      switch (e.kind) {
        case 'started':
          send(e.ref, [T.Started, { queueMs: e.queueMs }]);
          break;
        case 'text': {
          // Each generated token is counted in exactly one text emission, in order: its entry goes with it.
          const pending = e.tokens > 0 ? this.logprobs.get(e.id) : undefined;
          if (pending && pending.length > 0) send(e.ref, [T.Text, e.text, e.tokens, pending.splice(0, e.tokens)]);
          else {
            // One reused frame for every plain token (packed before send returns).
            textFrame[1] = e.text;
            textFrame[2] = e.tokens;
            send(e.ref, textFrame);
          }
          if (e.tokens > 0) this.unreported.set(e.id, (this.unreported.get(e.id) ?? 0) + e.tokens);
          break;
        }
        case 'done':
          // What is left is the end-of-generation token's entry: it produced no output.
          this.logprobs.delete(e.id);
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

const textFrame: [typeof T.Text, string, number] = [T.Text, '', 0];

function send(port: MessagePort, frame: OnRequestPortFromEngine): void {
  postFrame(port, frame);
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
  loadAdapter: (a: { path: string; sha256: string }) => shell.loadAdapter(a),
  /**
   * After a failed start: close this thread's port so the thread ends by itself once llama.cpp's
   * pending async work has completed (ActorSystem.endFailedWorker says why not terminate()).
   * The port closes after this call's reply is posted.
   */
  release: () => {
    setTimeout(() => parentPort!.close(), 0);
  },
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
