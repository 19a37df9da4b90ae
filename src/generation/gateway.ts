/**
 * The main-thread facade over the actor system. Per request: resolve the model, tokenize (tokenizer
 * pool), check lengths and ids before anything reaches native code (sampling.ts), serve an exact
 * repeat from the response cache, else hand the request to a `Run` (run.ts), which admits it to the
 * scheduler and turns what comes back into sink calls, metrics and the audit line. Also the door to
 * runtime controls the admin API uses (prefix cache, fairness, models).
 *
 * Which models exist, and in what state, is the registry's (src/registry): every request resolves
 * its model there and holds a lease on it while it runs, so an unload waits for it.
 */
import type { InferFluxConfig, ModelEntry } from '../config/types.js';
import { backendExposure, modelBackend } from '../config/load.js';
import { InferFluxError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { ActorSystem } from '../actors/system.js';
import { ResponseCache, type ResponseKey } from '../runtime/prefix/response-cache.js';
import { Embedder } from './embedder.js';
import type {
  AdapterControl,
  AdapterInfo,
  CacheControl,
  ChatMessage,
  DebugControl,
  EmbedInput,
  EmbedOutput,
  FairnessControl,
  Gateway,
  GenerateInput,
  GenerationHandle,
  ModelControl,
  ModelFileInfo,
  ModelInfo,
  PromptInput,
  ReadyReport,
  RunningGeneration,
  TokenizedText,
  TokenizeText,
  TokenSink,
} from './contract.js';
import { ModelFileCache } from './model-file.js';
import { Run, type FinishedResponse } from './run.js';
import { TokenTraceLog } from './token-trace.js';
import { checkPromptTokens, resolveSampling } from './sampling.js';
import { servingShape } from '../registry/memory-estimate.js';
import { ModelRegistry, type RegisteredModel, type RegistryChange } from '../registry/model-registry.js';
import { ModelStateWriter, restoreAdapters, restoreModelState, type KeptModelState, type StateLog } from '../registry/model-state.js';
import { AdapterRegistry, type AdapterLease, type LoadedAdapter } from '../registry/adapter-registry.js';

export class ActorGateway implements Gateway {
  private readonly created = Math.floor(Date.now() / 1000);
  private inflight = 0;
  /** Generations in flight (insertion order = oldest first), for the console. */
  private readonly runs = new Set<Run>();
  private idleWaiters: (() => void)[] = [];
  private readonly responses: ResponseCache<FinishedResponse>;
  private readonly files = new ModelFileCache();
  readonly cache: CacheControl;
  readonly fairness: FairnessControl;
  readonly modelControl: ModelControl;
  readonly adapterControl: AdapterControl;
  readonly debug: DebugControl;
  /** The last finished requests' token traces (`/debug`). */
  private readonly tokenTraces = new TokenTraceLog();
  private readonly embedder: Embedder;

  private constructor(
    private readonly config: InferFluxConfig,
    private readonly system: ActorSystem,
    private readonly metrics: Metrics,
    readonly registry: ModelRegistry,
    readonly adapters: AdapterRegistry,
    private readonly kept: ModelStateWriter | null,
  ) {
    const rc = config.runtime.responseCache;
    this.responses = new ResponseCache({ enabled: rc.enabled, maxEntries: rc.maxEntries, maxBytes: rc.maxBytes });
    this.cache = { status: () => system.cacheStatus(), flush: () => system.flushCache() };
    this.fairness = { get: () => system.fairnessSettings, set: (patch) => system.setFairness(patch) };
    // Each change answers once it is kept (server.models_state_path), so a restart right after serves it.
    const saved = async (): Promise<void> => {
      await this.kept?.flush();
    };
    this.debug = {
      traces: () => this.tokenTraces.list(),
      trace: (id) => this.tokenTraces.get(id),
      engines: () => this.system.engineDebug(),
    };
    this.adapterControl = {
      list: () => this.adapters.list().map(adapterInfo),
      load: async (req) => {
        const a = await this.adapters.load(req, registry.lookup(req.model));
        await saved();
        return adapterInfo(a);
      },
      unload: async (id) => {
        await this.adapters.unload(id);
        await saved();
      },
    };
    this.modelControl = {
      load: async (req) => {
        const m = await registry.load(req);
        await saved();
        return this.info(m);
      },
      // The model's adapters go with it (its requests, adapters' included, have drained by then).
      unload: async (id) => {
        await registry.unload(id);
        await this.adapters.unloadAllOf(id);
        await saved();
      },
      setDefault: async (id) => {
        const m = registry.setDefault(id);
        await saved();
        return this.info(m);
      },
      onChange: (listener) => void registry.on('change', listener),
    };
    // Each model brought up counts once on its backend: those adopted before this facade existed
    // now, later loads as they become ready.
    const exposed = (id: string): void => {
      const e = backendExposure(config, id);
      metrics.backendExposures.inc({ model: id, requested: e.requested, exposed: e.exposed, provenance: e.provenance });
    };
    for (const m of registry.list()) if (m.state === 'ready') exposed(m.id);
    registry.on('change', (c: RegistryChange) => {
      if (c.kind === 'ready') exposed(c.id);
    });
    // The registry says which model an id is; a configured model keeps its entry (its `embeddings` flag).
    const entryOf = (m: RegisteredModel): ModelEntry => {
      const configured = m.source === 'config' ? config.models.find((c) => c.id === m.id) : undefined;
      return configured ?? { id: m.id, path: m.path, default: m.isDefault, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' };
    };
    this.embedder = new Embedder({
      config,
      pool: system.embeddings,
      metrics,
      audit: system.audit,
      resolveModel: (id) => entryOf(registry.lookup(id)),
      readyModels: () => registry.list().filter((m) => m.state === 'ready').map(entryOf),
      modelFile: (path) => this.files.get(path, 0),
    });
  }

  /**
   * The facade over a started actor system, with the configured models adopted by a new registry,
   * then the runtime changes kept from an earlier run (`kept`, read at start-up) replayed over them.
   */
  static async create(config: InferFluxConfig, system: ActorSystem, metrics: Metrics, kept?: { state: KeptModelState; log: StateLog }): Promise<ActorGateway> {
    const registry = new ModelRegistry({
      host: system,
      modelsDir: config.server.adminLoadDir,
      pulledDir: config.server.modelsDir,
      memoryBudgetBytes: config.runtime.memoryBudgetBytes,
      shape: servingShape(config),
    });
    await registry.adoptConfigured(config.models);
    registry.hashConfigured();
    const adapters = new AdapterRegistry(system, config.server.adminLoadDir);
    if (kept) {
      await restoreModelState(registry, kept.state, kept.log);
      await restoreAdapters(adapters, registry, kept.state.adapters, kept.log);
    }
    let writer: ModelStateWriter | null = null;
    if (config.server.modelsStatePath !== '') {
      writer = new ModelStateWriter(config.server.modelsStatePath, registry, adapters, config.models.map((m) => m.id), kept?.log ?? (() => undefined));
      // Following starts after the replay: the file changes only when an admin changes something.
      writer.follow();
    }
    return new ActorGateway(config, system, metrics, registry, adapters, writer);
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
    return this.registry.list().map((m) => this.info(m));
  }

  private info(m: RegisteredModel): ModelInfo {
    const engine = this.system.engineInfo(m.id);
    return {
      id: m.id,
      path: m.path,
      pulled: m.pulled,
      created: this.created,
      ownedBy: 'inferflux',
      isDefault: m.isDefault,
      contextSize: this.config.runtime.contextSize,
      architecture: m.metadata.architecture,
      trainContextSize: m.metadata.contextLength,
      parameterCount: m.metadata.parameterCount,
      vocabSize: engine?.vocabSize ?? 0,
      ready: m.state === 'ready' && engine !== null,
      state: m.state,
      capabilities: { ...m.capabilities },
      sha256: m.sha256,
      source: m.source,
      error: m.error,
      metadata: { ...m.metadata },
      memoryBytes: m.memory.totalBytes,
      backendExposure: backendExposure(this.config, m.id),
      adapters: this.adapters.list(m.id).map(adapterInfo),
    };
  }

  model(id: string | undefined): ModelInfo {
    return this.info(this.registry.lookup(this.parseRef(id, undefined).model));
  }

  /**
   * A request's model and adapter: `base:adapter` names adapter `adapter` of model `base` when no
   * model has the whole id; the `adapter` field names one directly (both must agree).
   */
  private parseRef(model: string | undefined, adapter: string | undefined): { model: string | undefined; adapter: string | undefined } {
    if (model !== undefined && model !== '' && !this.registry.get(model)) {
      const i = model.lastIndexOf(':');
      const base = model.slice(0, i);
      const suffix = model.slice(i + 1);
      if (i > 0 && suffix !== '' && this.registry.get(base)) {
        if (adapter !== undefined && adapter !== suffix) {
          throw new InferFluxError('invalid_request', `model '${model}' names adapter '${suffix}' but the adapter field is '${adapter}'.`, { param: 'adapter' });
        }
        return { model: base, adapter: suffix };
      }
    }
    return { model, adapter };
  }

  async countTokens(model: string | undefined, prompt: PromptInput): Promise<number> {
    return this.leased(model, async (entry) => (await this.promptTokens(entry, prompt, this.readyEngine(entry).vocabSize)).length);
  }

  tokenize(model: string | undefined, req: TokenizeText): Promise<TokenizedText> {
    return this.leased(model, (entry) => this.system.tokenizer.tokenizeText({ modelPath: entry.path, ...req }));
  }

  detokenize(model: string | undefined, tokens: number[]): Promise<string> {
    return this.leased(model, (entry) => {
      // The vocabulary size comes from the loaded engine; an id past it would read out of bounds.
      checkPromptTokens(tokens, this.readyEngine(entry).vocabSize, 'tokens');
      return this.system.tokenizer.detokenize({ modelPath: entry.path, tokens });
    });
  }

  applyTemplate(model: string | undefined, messages: ChatMessage[]): Promise<string> {
    return this.leased(model, (entry) => this.system.tokenizer.applyTemplate({ modelPath: entry.path, messages }));
  }

  modelFile(model: string | undefined, opts: { maxArray?: number } = {}): Promise<ModelFileInfo> {
    return this.files.get(this.registry.lookup(model).path, opts.maxArray ?? Infinity);
  }

  /** Runs `fn` holding a lease on the model, so an unload cannot free its tokenizer underneath. */
  private async leased<T>(model: string | undefined, fn: (entry: RegisteredModel) => T | Promise<T>): Promise<T> {
    const lease = this.registry.acquire(this.parseRef(model, undefined).model);
    try {
      return await fn(lease.model);
    } finally {
      lease.release();
    }
  }

  /**
   * Whose cached KV and responses a request may use: its tenant's only under
   * `runtime.cache_isolation: tenant`, and only its `cache_salt`'s when it sends one; '' = shared.
   */
  private cacheSaltOf(input: GenerateInput): string {
    const parts: string[] = [];
    if (this.config.runtime.cacheIsolation === 'tenant') parts.push(`tenant=${input.tenant ?? 'default'}`);
    if (input.cacheSalt !== undefined && input.cacheSalt !== '') parts.push(`salt=${input.cacheSalt}`);
    return parts.join('\n');
  }

  /** The model's ready engine, or `model_not_loaded` (with why, when its workers failed). */
  private readyEngine(model: RegisteredModel) {
    const engine = this.system.engineInfo(model.id);
    if (engine) return engine;
    const why = this.system.failure(model.id);
    throw new InferFluxError('model_not_loaded', `Model '${model.id}' is not loaded${why ? `: ${why}` : ''}.`, { retryAfter: 5 });
  }

  readiness(): ReadyReport {
    const models = this.registry.list().map((m) => {
      const row: ReadyReport['models'][number] = { id: m.id, ready: m.state === 'ready' && this.system.engineInfo(m.id) !== null, state: m.state, default: m.isDefault };
      if (m.error) row.error = m.error;
      return row;
    });
    const defaultReady = models.some((m) => m.default && m.ready);
    return { ready: this.system.schedulerReady && defaultReady, models, pools: this.system.pools() };
  }

  running(): RunningGeneration[] {
    return [...this.runs].map((r) => r.live());
  }

  generate(input: GenerateInput, sink: TokenSink): GenerationHandle {
    const run = new Run(input, sink, this.metrics, this.system, this.config.audit.debugMode);
    this.inflight++;
    this.runs.add(run);
    run.onTrace = (t) => this.tokenTraces.add(t);
    run.onFinish = () => {
      this.runs.delete(run);
      this.inflight--;
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
    this.start(run);
    return run.handle;
  }

  /**
   * Takes the model's lease synchronously (before `generate` returns), so an unload that begins
   * after this request was accepted waits for it; the lease ends when the run does.
   */
  private start(run: Run): void {
    let lease;
    let adapterLease: AdapterLease | undefined;
    try {
      const ref = this.parseRef(run.input.model, run.input.adapter);
      lease = this.registry.acquire(ref.model);
      if (ref.adapter !== undefined) {
        try {
          adapterLease = this.adapters.acquire(lease.model.id, ref.adapter);
        } catch (err) {
          lease.release();
          throw err;
        }
        const a: LoadedAdapter = adapterLease.adapter;
        run.adapter = { id: a.id, ref: { key: a.key, path: a.path, scale: a.scale, sha256: a.sha256 } };
        this.metrics.adapterRequests.inc({ model: lease.model.id, adapter: a.id });
      }
    } catch (err) {
      run.fail(InferFluxError.from(err));
      return;
    }
    const finished = run.onFinish;
    run.onFinish = () => {
      adapterLease?.release();
      lease.release();
      finished();
    };
    void this.prepare(run, lease.model);
  }

  private async prepare(run: Run, model: RegisteredModel): Promise<void> {
    try {
      run.model = model.id;
      run.backend = modelBackend(this.config, model.id);
      run.cacheSalt = this.cacheSaltOf(run.input);
      const engine = this.readyEngine(model);
      if (model.metadata.isMoe) this.metrics.moeRequests.inc({ model: model.id });
      const tokenizeStart = performance.now();
      const tokens = await this.promptTokens(model, run.input.prompt, engine.vocabSize);
      run.tokenizeMs = performance.now() - tokenizeStart;
      if (run.cancelled) return run.finish();
      const sampling = resolveSampling(run.input.params, engine, tokens.length, run.input.maxTokensField);
      // Keyed by this load of the model: the same id loaded again from another file starts empty.
      // And by adapter content + scale: an adapter's answers are never served for the base or another adapter.
      const key = this.responseKey(`${model.id}#${model.serial}${run.adapter ? `@${run.adapter.ref.key}` : ''}${run.cacheSalt === '' ? '' : `\0${run.cacheSalt}`}`, tokens, run.input);
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

  private async promptTokens(model: RegisteredModel, p: PromptInput, vocabSize: number): Promise<number[]> {
    if (p.kind === 'tokens') {
      // Out-of-range ids abort llama.cpp (GGML_ASSERT) and with it the whole process.
      checkPromptTokens(p.tokens, vocabSize);
      return p.tokens;
    }
    const res = await this.system.tokenizer.tokenize({ modelPath: model.path, prompt: p });
    return res.tokens;
  }
}


function adapterInfo(a: LoadedAdapter): AdapterInfo {
  return {
    id: a.id,
    model: a.model,
    path: a.path,
    scale: a.scale,
    sha256: a.sha256,
    rank: a.rank,
    alpha: a.alpha,
    targets: a.targets,
    state: a.state,
    inflight: a.inflight,
    loadedAt: new Date(a.loadedAt).toISOString(),
  };
}
