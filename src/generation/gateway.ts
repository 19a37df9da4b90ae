/**
 * The main-thread facade over the actor system. Per request: resolve the model, tokenize (tokenizer
 * pool), check lengths and ids before anything reaches native code (sampling.ts), serve an exact
 * repeat from the response cache, else hand the request to a `Run` (run.ts), which admits it to the
 * scheduler and turns what comes back into sink calls, metrics and the audit line. Also the door to
 * runtime controls the admin API uses (prefix cache, fairness).
 */
import type { InferFluxConfig, ModelEntry } from '../config/types.js';
import { InferFluxError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { ActorSystem } from '../actors/system.js';
import { ResponseCache, type ResponseKey } from '../runtime/prefix/response-cache.js';
import { Embedder } from './embedder.js';
import type {
  CacheControl,
  ChatMessage,
  EmbedInput,
  EmbedOutput,
  FairnessControl,
  Gateway,
  GenerateInput,
  GenerationHandle,
  ModelFileInfo,
  ModelInfo,
  PromptInput,
  ReadyReport,
  TokenizedText,
  TokenizeText,
  TokenSink,
} from './contract.js';
import { ModelFileCache } from './model-file.js';
import { Run, type FinishedResponse } from './run.js';
import { checkPromptTokens, resolveSampling } from './sampling.js';

export class ActorGateway implements Gateway {
  private readonly created = Math.floor(Date.now() / 1000);
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly responses: ResponseCache<FinishedResponse>;
  private readonly files = new ModelFileCache();
  readonly cache: CacheControl;
  readonly fairness: FairnessControl;
  private readonly embedder: Embedder;

  constructor(
    private readonly config: InferFluxConfig,
    private readonly system: ActorSystem,
    private readonly metrics: Metrics,
  ) {
    const rc = config.runtime.responseCache;
    this.responses = new ResponseCache({ enabled: rc.enabled, maxEntries: rc.maxEntries, maxBytes: rc.maxBytes });
    this.cache = { status: () => system.cacheStatus(), flush: () => system.flushCache() };
    this.fairness = { get: () => system.fairnessSettings, set: (patch) => system.setFairness(patch) };
    this.embedder = new Embedder({
      config,
      pool: system.embeddings,
      metrics,
      audit: system.audit,
      resolveModel: (id) => this.resolveModel(id),
      modelFile: (path) => this.files.get(path, 0),
    });
  }

  /** Starts the embedding pool when a configured model serves embeddings (in the background). */
  warmEmbeddings(log: (msg: string) => void): Promise<void> {
    return this.embedder.warm(log);
  }

  async embed(input: EmbedInput, signal?: AbortSignal): Promise<EmbedOutput> {
    this.inflight++;
    try {
      return await this.embedder.embed(input, signal);
    } finally {
      this.inflight--;
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
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

  model(id: string | undefined): ModelInfo {
    const entry = this.resolveModel(id);
    return this.models().find((m) => m.id === entry.id)!;
  }

  async countTokens(model: string | undefined, prompt: PromptInput): Promise<number> {
    const entry = this.resolveModel(model);
    const tokens = await this.promptTokens(entry, prompt, this.readyEngine(entry).vocabSize);
    return tokens.length;
  }

  tokenize(model: string | undefined, req: TokenizeText): Promise<TokenizedText> {
    const entry = this.resolveModel(model);
    return this.system.tokenizer.tokenizeText({ modelPath: entry.path, ...req });
  }

  async detokenize(model: string | undefined, tokens: number[]): Promise<string> {
    const entry = this.resolveModel(model);
    // The vocabulary size comes from the loaded engine; an id past it would read out of bounds.
    checkPromptTokens(tokens, this.readyEngine(entry).vocabSize, 'tokens');
    return this.system.tokenizer.detokenize({ modelPath: entry.path, tokens });
  }

  applyTemplate(model: string | undefined, messages: ChatMessage[]): Promise<string> {
    const entry = this.resolveModel(model);
    return this.system.tokenizer.applyTemplate({ modelPath: entry.path, messages });
  }

  modelFile(model: string | undefined, opts: { maxArray?: number } = {}): Promise<ModelFileInfo> {
    return this.files.get(this.resolveModel(model).path, opts.maxArray ?? Infinity);
  }

  /** The model's ready engine, or `model_not_loaded` (with why, when its workers failed). */
  private readyEngine(model: ModelEntry) {
    const engine = this.system.engineInfo(model.id);
    if (engine) return engine;
    const why = this.system.failure(model.id);
    throw new InferFluxError('model_not_loaded', `Model '${model.id}' is not loaded${why ? `: ${why}` : ''}.`, { retryAfter: 5 });
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
      const engine = this.readyEngine(model);
      const tokens = await this.promptTokens(model, run.input.prompt, engine.vocabSize);
      if (run.cancelled) return run.finish();
      const sampling = resolveSampling(run.input.params, engine, tokens.length);
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
   * model, the prompt tokens, the number of choices and the request's sampling settings as a whole.
   * Null when not cacheable or the cache is off.
   */
  private responseKey(model: string, tokens: number[], input: GenerateInput): ResponseKey | null {
    // A cached answer keeps its text, not the log probabilities of its tokens.
    if (input.params.logprobs !== null) return null;
    return this.responses.keyFor(model, tokens, { ...input.params, n: input.n });
  }

  private resolveModel(id: string | undefined): ModelEntry {
    if (id === undefined || id === '') return this.config.models.find((m) => m.default) ?? this.config.models[0]!;
    const model = this.config.models.find((m) => m.id === id);
    if (!model) throw new InferFluxError('model_not_found', `The model '${id}' does not exist.`, { param: 'model' });
    return model;
  }

  private async promptTokens(model: ModelEntry, p: PromptInput, vocabSize: number): Promise<number[]> {
    if (p.kind === 'tokens') {
      // Out-of-range ids abort llama.cpp (GGML_ASSERT) and with it the whole process.
      checkPromptTokens(p.tokens, vocabSize);
      return p.tokens;
    }
    const res = await this.system.tokenizer.tokenize({ modelPath: model.path, prompt: p });
    return res.tokens;
  }
}

