/**
 * The main-thread facade over the actor system: resolves the model, tokenizes (tokenizer pool),
 * checks lengths and ids before anything reaches native code, admits each choice to the
 * scheduler with its own MessagePort, and turns the frames that come back on that port into
 * sink calls, metrics and one audit line per request.
 */
import { createHash, randomInt } from 'node:crypto';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { InferFluxConfig, ModelEntry } from '../config/types.js';
import { InferFluxError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type {
  FinishReason,
  Gateway,
  GenerateInput,
  GenerationHandle,
  ModelInfo,
  ReadyReport,
  TokenSink,
} from './gateway-types.js';
import {
  T,
  postFrame,
  unpack,
  type AdmitBody,
  type EngineReady,
  type EngineSampling,
  type Envelope,
  type OnRequestPortFromEngine,
  type RequestId,
} from './protocol.js';
import type { ActorSystem } from './system.js';
import { prefixBlocks } from '../runtime/prefix/block-hash.js';
import { ResponseCache, type ResponseKey } from '../runtime/prefix/response-cache.js';

/** A finished deterministic response, kept for exact-match reuse (`runtime.response_cache`). */
interface CachedResponse {
  promptTokens: number;
  texts: string[];
  reasons: FinishReason[];
  completion: number[];
}

const now = (): number => performance.timeOrigin + performance.now();
const BACKEND = 'cpu';

export class ActorGateway implements Gateway {
  private readonly created = Math.floor(Date.now() / 1000);
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly responses: ResponseCache<CachedResponse>;

  constructor(
    private readonly config: InferFluxConfig,
    private readonly system: ActorSystem,
    private readonly metrics: Metrics,
  ) {
    const rc = config.runtime.responseCache;
    this.responses = new ResponseCache({ enabled: rc.enabled, maxEntries: rc.maxEntries, maxBytes: rc.maxBytes });
  }

  /** Requests still running; shutdown waits for this to reach zero (bounded by a deadline). */
  get active(): number {
    return this.inflight;
  }

  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  models(): ModelInfo[] {
    return this.config.models.map((m) => {
      const info = this.system.engineInfo(m.id);
      return {
        id: m.id,
        path: m.path,
        created: this.created,
        ownedBy: 'inferflux',
        isDefault: m.default,
        contextSize: this.config.runtime.contextSize,
        architecture: info?.architecture ?? 'unknown',
        trainContextSize: info?.trainContextSize ?? 0,
        parameterCount: info?.parameterCount ?? 0,
        vocabSize: info?.vocabSize ?? 0,
        ready: info !== null,
      };
    });
  }

  readiness(): ReadyReport {
    const models = this.config.models.map((m) => ({ id: m.id, ready: this.system.engineInfo(m.id) !== null }));
    return { ready: this.system.schedulerReady && models.some((m) => m.ready), models, pools: this.system.pools() };
  }

  generate(input: GenerateInput, sink: TokenSink): GenerationHandle {
    const run = new Run(input, sink, this.metrics, this.system, this.config.audit.debugMode);
    this.inflight++;
    run.onFinish = () => {
      this.inflight--;
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
    void this.start(run);
    return run.handle;
  }

  private async start(run: Run): Promise<void> {
    try {
      const model = this.resolveModel(run.input.model);
      run.model = model.id;
      const engine = this.system.engineInfo(model.id);
      if (!engine) {
        const why = this.system.failure(model.id);
        throw new InferFluxError('model_not_loaded', `Model '${model.id}' is not loaded${why ? `: ${why}` : ''}.`, { retryAfter: 5 });
      }
      const tokens = await this.tokenize(model, run);
      if (run.cancelled) return run.finish();
      const sampling = this.sampling(run.input, engine, tokens.length);
      const key = this.responseKey(model.id, tokens, run.input);
      const cached = this.responses.get(key);
      if (cached) {
        this.metrics.streamCacheHits.inc({ model: model.id });
        return run.replay(cached);
      }
      if (key) {
        run.onComplete = (r) => this.responses.set(key, r, r.texts.reduce((n, t) => n + t.length * 2, 256));
      }
      run.admit(tokens, sampling);
    } catch (err) {
      run.fail(InferFluxError.from(err));
    }
  }

  /**
   * Exact-match reuse key: only for deterministic requests (greedy, or a fixed seed), over the
   * model, the prompt tokens and every parameter that shapes the output. Null when not cacheable
   * or the cache is off.
   */
  private responseKey(model: string, tokens: number[], input: GenerateInput): ResponseKey | null {
    const p = input.params;
    return this.responses.keyFor(model, tokens, {
      temperature: p.temperature,
      seed: p.seed ?? null,
      maxTokens: p.maxTokens ?? null,
      topP: p.topP,
      topK: p.topK,
      minP: p.minP,
      stop: p.stop,
      presencePenalty: p.presencePenalty,
      frequencyPenalty: p.frequencyPenalty,
      repeatPenalty: p.repeatPenalty,
      logitBias: p.logitBias,
      ignoreEos: p.ignoreEos,
      minTokens: p.minTokens,
      n: input.n,
    });
  }

  private resolveModel(id: string | undefined): ModelEntry {
    if (id === undefined || id === '') return this.config.models.find((m) => m.default) ?? this.config.models[0]!;
    const model = this.config.models.find((m) => m.id === id);
    if (!model) throw new InferFluxError('model_not_found', `The model '${id}' does not exist.`, { param: 'model' });
    return model;
  }

  private async tokenize(model: ModelEntry, run: Run): Promise<number[]> {
    const p = run.input.prompt;
    if (p.kind === 'tokens') {
      const vocab = this.system.engineInfo(model.id)!.vocabSize;
      // Out-of-range ids abort llama.cpp (GGML_ASSERT) and with it the whole process.
      for (const t of p.tokens) {
        if (!Number.isInteger(t) || t < 0 || t >= vocab) {
          throw new InferFluxError('invalid_request', `Token id ${t} is outside the vocabulary (0..${vocab - 1}).`, { param: 'prompt' });
        }
      }
      return p.tokens;
    }
    const res = await this.system.tokenizer.tokenize({ modelPath: model.path, prompt: p });
    return res.tokens;
  }

  private sampling(input: GenerateInput, engine: EngineReady, promptTokens: number): EngineSampling {
    const ctx = engine.contextSize;
    const p = input.params;
    if (promptTokens === 0) throw new InferFluxError('invalid_request', 'The prompt is empty.', { param: 'prompt' });
    if (promptTokens >= ctx) {
      throw new InferFluxError(
        'context_length_exceeded',
        `The prompt is ${promptTokens} tokens; this model's context is ${ctx} tokens, which must also hold at least one generated token.`,
        { param: 'messages' },
      );
    }
    if (p.maxTokens !== undefined && promptTokens + p.maxTokens > ctx) {
      throw new InferFluxError(
        'context_length_exceeded',
        `The prompt (${promptTokens} tokens) plus max_tokens (${p.maxTokens}) exceeds this model's context of ${ctx} tokens.`,
        { param: 'max_tokens' },
      );
    }
    const biasTokens: number[] = [];
    const biasValues: number[] = [];
    for (const [key, value] of Object.entries(p.logitBias)) {
      const id = Number(key);
      if (!Number.isInteger(id) || id < 0 || id >= engine.vocabSize) {
        throw new InferFluxError('invalid_request', `logit_bias names token ${key}, outside the vocabulary (0..${engine.vocabSize - 1}).`, {
          param: 'logit_bias',
        });
      }
      biasTokens.push(id);
      // OpenAI: -100 effectively bans a token; llama.cpp bans with -Infinity.
      biasValues.push(value <= -100 ? -Infinity : value);
    }
    return {
      maxTokens: p.maxTokens ?? ctx - promptTokens,
      temperature: p.temperature,
      topP: p.topP,
      topK: p.topK,
      minP: p.minP,
      seed: p.seed ?? randomInt(0, 2 ** 31),
      stop: p.stop,
      presencePenalty: p.presencePenalty,
      frequencyPenalty: p.frequencyPenalty,
      repeatPenalty: p.repeatPenalty,
      biasTokens,
      biasValues,
      ignoreEos: p.ignoreEos,
      minTokens: Math.min(p.minTokens, p.maxTokens ?? ctx),
    };
  }
}

/** One request: its choices, their ports, and the sink's lifecycle. */
class Run {
  model = 'unknown';
  cancelled = false;
  onFinish: () => void = () => undefined;
  /** Set for cacheable requests: receives the finished response (not on cancel or error). */
  onComplete: ((r: CachedResponse) => void) | null = null;
  private completionPerChoice: number[] = [];
  readonly handle: GenerationHandle;
  private readonly startedAt = now();
  private ended = false;
  private ports: MessagePort[] = [];
  private ids: RequestId[] = [];
  private open = 0;
  private promptTokens = 0;
  private completionTokens = 0;
  private cachedTokens = 0;
  private firstTokenSeen = false;
  private texts: string[] = [];
  private finishReasons: FinishReason[] = [];
  private choiceDone: boolean[] = [];

  constructor(
    readonly input: GenerateInput,
    private readonly sink: TokenSink,
    private readonly metrics: Metrics,
    private readonly system: ActorSystem,
    private readonly debugAudit: boolean,
  ) {
    this.handle = {
      cancel: () => this.cancel(),
      pause: () => this.broadcast([T.Pause]),
      resume: () => this.broadcast([T.Resume]),
    };
  }

  admit(tokens: number[], sampling: EngineSampling): void {
    this.promptTokens = tokens.length;
    this.metrics.promptTokensTotal.inc({ model: this.model, backend: BACKEND }, tokens.length);
    this.sink.onStart({ model: this.model, promptTokens: tokens.length, created: Math.floor(Date.now() / 1000) });
    const n = this.input.n;
    this.open = n;
    const prefix = prefixBlocks(tokens);
    for (let i = 0; i < n; i++) {
      const { port1, port2 } = new MessageChannel();
      const id = (n === 1 ? this.input.requestId : `${this.input.requestId}/${i}`) as RequestId;
      this.ports.push(port1);
      this.ids.push(id);
      this.texts.push('');
      this.finishReasons.push('stop');
      this.choiceDone.push(false);
      // Choice i of a seeded request uses seed + i: reproducible, yet the choices differ.
      const body: AdmitBody = {
        id,
        model: this.model,
        tokens,
        sampling: { ...sampling, seed: (sampling.seed + i) >>> 0 },
        enqueuedAt: now(),
        priority: this.input.priority ?? 0,
        tenant: this.input.tenant ?? 'default',
        prefix,
      };
      port1.on('message', (env: Envelope) => this.onFrame(i, unpack<OnRequestPortFromEngine>(env.f)));
      // The port closes early only when the worker holding it died (or shut down).
      port1.on('close', () => this.onPortClosed(i));
      if (!this.system.toScheduler([T.Admit, body], port2)) {
        return this.fail(new InferFluxError('worker_crashed', 'The scheduler is restarting; retry the request.', { retryAfter: 1 }));
      }
    }
  }

  private onFrame(choice: number, f: OnRequestPortFromEngine): void {
    if (this.ended) return;
    switch (f[0]) {
      case T.Started:
        this.metrics.queueWait.observe({ model: this.model }, f[1].queueMs / 1000);
        break;
      case T.Text:
        if (!this.firstTokenSeen && f[2] > 0) {
          this.firstTokenSeen = true;
          this.metrics.ttft.observe({ model: this.model }, (now() - this.startedAt) / 1000);
        }
        if (f[1].length > 0) {
          this.texts[choice] += f[1];
          if (!this.cancelled) this.sink.onText(choice, f[1]);
        }
        break;
      case T.Done: {
        const [, reason, stats] = f;
        this.completionTokens += stats.completionTokens;
        this.completionPerChoice[choice] = stats.completionTokens;
        if (choice === 0) {
          this.cachedTokens = stats.cachedTokens;
          this.countPrefix(stats.cachedTokens, stats.promptTokens);
        }
        this.finishReasons[choice] = reason;
        this.choiceDone[choice] = true;
        this.metrics.completionTokensTotal.inc({ model: this.model, backend: BACKEND }, stats.completionTokens);
        this.metrics.prefillDuration.observe({ model: this.model }, stats.prefillMs / 1000);
        this.metrics.decodeDuration.observe({ model: this.model }, stats.decodeMs / 1000);
        this.metrics.batchExec.observe({ model: this.model }, (stats.prefillMs + stats.decodeMs) / 1000);
        if (stats.kvTransferMs >= 0) this.metrics.kvTransfer.observe({ model: this.model }, stats.kvTransferMs / 1000);
        if (stats.kvHydrateMs >= 0) this.metrics.kvHydrate.observe({ model: this.model }, stats.kvHydrateMs / 1000);
        this.ports[choice]!.close();
        if (reason === 'cancelled') this.metrics.cancelledTotal.inc({ model: this.model });
        if (reason === 'cancelled' && !this.cancelled) {
          // The client is still there: the engine stopped the request (server shutting down).
          // Finishing it normally would hand the client a short answer that looks complete.
          return this.fail(new InferFluxError('shutting_down', 'The server stopped before the request finished; retry it.', { retryAfter: 1 }));
        }
        if (!this.cancelled && reason !== 'cancelled') this.sink.onChoiceEnd(choice, reason, stats.completionTokens);
        if (--this.open === 0) this.complete();
        break;
      }
      case T.Fail:
        this.fail(InferFluxError.fromWire(f[1]));
        break;
      default: {
        const never: never = f[0];
        throw new Error(`gateway: unknown frame ${String(never)}`);
      }
    }
  }

  /** Prefix cache outcome of the request: everything reusable was cached, some of it, or none. */
  private countPrefix(cached: number, prompt: number): void {
    const m = { model: this.model };
    if (cached <= 0) return this.metrics.prefixMisses.inc(m);
    this.metrics.prefixMatchedTokens.inc(m, cached);
    // The last prompt token is always evaluated (its logits start generation).
    if (cached >= prompt - 1) this.metrics.prefixHits.inc(m);
    else this.metrics.prefixPartialHits.inc(m);
  }

  /** A port closes before its Done frame only when the worker holding it died. */
  private onPortClosed(choice: number): void {
    if (this.ended || this.choiceDone[choice]) return;
    this.fail(new InferFluxError('worker_crashed', undefined, { retryAfter: 1 }));
  }

  private complete(): void {
    if (this.cancelled) {
      this.audit(499, 'cancelled');
      return this.finish();
    }
    this.sink.onEnd({ promptTokens: this.promptTokens, completionTokens: this.completionTokens, cachedTokens: this.cachedTokens });
    this.audit(200, 'allow');
    this.onComplete?.({ promptTokens: this.promptTokens, texts: [...this.texts], reasons: [...this.finishReasons], completion: [...this.completionPerChoice] });
    this.finish();
  }

  /** Serve a cached response: the same sink calls a run would make, with no engine work. */
  replay(r: CachedResponse): void {
    this.promptTokens = r.promptTokens;
    this.cachedTokens = r.promptTokens;
    this.texts = [...r.texts];
    this.finishReasons = [...r.reasons];
    this.sink.onStart({ model: this.model, promptTokens: r.promptTokens, created: Math.floor(Date.now() / 1000) });
    for (let i = 0; i < r.texts.length; i++) {
      if (r.texts[i]!.length > 0) this.sink.onText(i, r.texts[i]!);
      this.sink.onChoiceEnd(i, r.reasons[i]!, r.completion[i]!);
      this.completionTokens += r.completion[i]!;
    }
    this.sink.onEnd({ promptTokens: r.promptTokens, completionTokens: this.completionTokens, cachedTokens: r.promptTokens });
    this.audit(200, 'allow:cached');
    this.finish();
  }

  fail(err: InferFluxError): void {
    if (this.ended) return;
    for (let i = 0; i < this.ports.length; i++) this.stopChoice(i);
    if (!this.cancelled) this.sink.onError(err);
    this.audit(err.status, `error:${err.code}`);
    this.finish();
  }

  /**
   * The client left: no more sink calls. The run stays open until every engine confirms the
   * stop (Done 'cancelled'), so metrics and the audit line carry the real token counts and a
   * graceful shutdown waits for the sequences to be freed.
   */
  private cancel(): void {
    if (this.ended || this.cancelled) return;
    this.cancelled = true;
    if (this.ports.length === 0) {
      // Still tokenizing: start() sees the flag and finishes without admitting.
      return;
    }
    for (let i = 0; i < this.ports.length; i++) if (!this.choiceDone[i]) this.stopChoice(i);
  }

  /** Ask the engine (or the scheduler, if still queued) to drop a choice. */
  private stopChoice(i: number): void {
    const port = this.ports[i]!;
    const id = this.ids[i]!;
    try {
      postFrame(port, [T.Cancel, id]);
    } catch {
      // The port is already closed: the choice is over.
    }
    this.system.toScheduler([T.Cancel, id]);
  }

  finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.onFinish();
  }

  private broadcast(frame: [typeof T.Pause] | [typeof T.Resume]): void {
    for (const port of this.ports) {
      try {
        postFrame(port, frame);
      } catch {
        // Closed ports belong to finished choices.
      }
    }
  }

  private audit(status: number, decision: string): void {
    const p = this.input.prompt;
    const promptText = p.kind === 'chat' ? JSON.stringify(p.messages) : p.kind === 'text' ? p.text : JSON.stringify(p.tokens);
    this.system.audit.record({
      ts: new Date().toISOString(),
      event: status >= 400 && status !== 499 ? 'error' : 'completion',
      requestId: this.input.requestId,
      keyId: this.input.keyId,
      tenant: this.input.tenant,
      traceparent: this.input.traceparent,
      route: this.input.route,
      model: this.model,
      status,
      decision,
      promptTokens: this.promptTokens,
      completionTokens: this.completionTokens,
      latencyMs: Math.round((now() - this.startedAt) * 1000) / 1000,
      finishReason: this.finishReasons.join(','),
      // Raw text only in debug mode; otherwise hashes let an auditor match without storing content.
      prompt: this.debugAudit ? promptText : sha256(promptText),
      response: this.debugAudit ? this.texts.join('\u0000') : sha256(this.texts.join('\u0000')),
    });
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
