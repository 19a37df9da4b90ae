/**
 * The ONLY module that touches node-llama-cpp internals.
 *
 * The public `sequence.evaluate()` path fragments batches (measured 1.4-2.3x slower than one
 * hand-driven batch per step, notes §2 and §13), so the engine drives llama.cpp through the
 * addon context directly: `initBatch` / `addToBatch` / `decodeBatch` / `sampleToken` on
 * `LlamaContext._ctx`, and `AddonSampler` from `llama._bindings`. These are internal and can
 * change in any release, so:
 *   - the package version is pinned exactly in package.json (3.22.1);
 *   - every internal access goes through `requireInternal()` here, which fails loudly naming
 *     the missing member;
 *   - `test/unit/batch-adapter.test.ts` is the contract test an upgrade must pass.
 */
import type { Llama, LlamaContext, LlamaModel } from 'node-llama-cpp';
import { InferFluxError } from '../../errors.js';
import { parseGbnf } from '../grammar/gbnf-check.js';
import { GrammarMirror, MirrorLimitError } from '../grammar/grammar-mirror.js';
import { buildGrammarTokenGuard, type GrammarTokenGuard } from './grammar-token-guard.js';
import { TokenMasker, type MirrorTracker } from './token-masks.js';
import { tokenPieces, type VocabInfo } from './token-pieces.js';
import { loadGreedyDraws, type GreedyDraws } from './threadpool/addon.js';

export const PINNED_NODE_LLAMA_CPP = '3.22.1';

/** Internal addon context surface we rely on (AddonTypes.d.ts, `AddonContext`). */
interface AddonContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstTokenSequenceIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(batchLogitIndex: number, sampler: AddonSampler): Promise<number>;
  disposeSequence(sequenceId: number): void;
  setThreads(threads: number): void;
}

/**
 * Internal addon members for sequence state, checked on first use (not in the constructor, so a
 * context that never saves state does not depend on them). AddonTypes.d.ts, `AddonContext`.
 */
interface AddonSequenceState {
  saveSequenceStateToFile(filePath: string, sequenceId: number, tokens: Uint32Array): Promise<number>;
  loadSequenceStateFromFile(filePath: string, sequenceId: number, maxContextSize: number): Promise<Uint32Array>;
  removeTokenCellsFromSequence(sequenceId: number, startPos: number, endPos: number): boolean;
  copySequenceStateFromOtherSequence(targetSequenceId: number, sourceSequenceId: number): Promise<number>;
}

/** Internal addon sampler (AddonTypes.d.ts, `AddonSampler`). */
export interface AddonSampler {
  dispose(): void;
  applyConfig(config: AddonSamplerConfig): void;
}

/**
 * Sampler settings. There is deliberately no grammar field: a grammar is attached with
 * `BatchContext.applySamplerConfig(sampler, config, grammar)`, because AddonSampler.applyConfig
 * DETACHES the grammar whenever the config it is given lacks one, and because the adapter must
 * know which sampler holds which grammar state to keep a broken state away from native code.
 */
export interface AddonSamplerConfig {
  temperature?: number;
  minP?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  repeatPenalty?: number;
  repeatPenaltyMaxTokens?: number;
  repeatPenaltyTokens?: Uint32Array;
  repeatPenaltyPresencePenalty?: number;
  repeatPenaltyFrequencyPenalty?: number;
  tokenBiasKeys?: Uint32Array;
  tokenBiasValues?: Float32Array;
}

/** A sampled token with its log probability and the most likely alternatives, [token, logprob] descending. */
export interface SampledLogprobs {
  token: number;
  logprob: number;
  top: [number, number][];
}

/** `AddonContext.sampleToken` with the metadata arguments (AddonTypes.d.ts). */
type SampleTokenWithLogits = (
  batchLogitIndex: number,
  sampler: AddonSampler,
  probabilities: boolean,
  confidence: boolean,
  logits: [tokens: readonly number[], includeMax: boolean, includeMin: boolean, includeSelected: boolean, includeTop: number],
  totalLogitWeight: boolean,
) => Promise<[token: number, probabilities: number[] | undefined, confidence: number | undefined, logits: number[] | undefined, totalLogitWeight: number | undefined]>;
/** Internal addon grammar (AddonTypes.d.ts, `AddonGrammar`): the parsed GBNF, shareable. */
interface AddonGrammar {
  isTextCompatible(text: string): boolean;
}

/** Internal native grammar evaluation state (`AddonGrammarEvaluationState`): one per generation. */
type AddonGrammarState = { readonly __brand: 'AddonGrammarEvaluationState' };

interface GrammarBindings {
  AddonGrammar: new (text: string, opts: { addonExports: unknown; rootRuleName: string }) => AddonGrammar;
  AddonGrammarEvaluationState: {
    new (model: unknown, grammar: AddonGrammar): AddonGrammarState;
    new (existing: AddonGrammarState): AddonGrammarState;
  };
  AddonSampler: {
    acceptGrammarEvaluationStateToken(state: AddonGrammarState, token: number): void;
    canBeNextTokenForGrammarEvaluationState(state: AddonGrammarState, token: number): boolean;
  };
}

/** GBNF parsed by llama.cpp, checked first by checkGbnf. Immutable; share it between requests. */
export class NativeGrammar {
  /** @internal */
  constructor(
    /** @internal */ readonly native: AddonGrammar,
    readonly gbnf: string,
    /** The grammar mirrored in TypeScript for token masks; null when it cannot be (too ambiguous). */
    readonly mirror: GrammarMirror | null,
  ) {}
}

/**
 * Where one generation stands in its grammar (llama.cpp's grammar sampler state).
 *
 * llama.cpp aborts the whole process (GGML_ABORT / GGML_ASSERT, measured) when a grammar state
 * is handed an end-of-generation token before the grammar can end, and when a state is used
 * again after a token was refused (the refusal leaves it with no parse stacks). So this wrapper
 * checks every token before the native accept, and once anything failed it is `broken` and never
 * reaches native code again.
 *
 * Tokens sampled by a sampler that holds this state are accepted by llama.cpp itself inside
 * sampleToken: do NOT `accept()` them again. `accept()` is for tokens the grammar did not sample
 * (replaying a suspended generation into a fresh state, a forced prefix).
 */
export class GrammarState {
  private isBroken = false;
  private isDisposed = false;
  private isCompleted = false;

  /** @internal */
  constructor(
    private readonly owner: BatchContext,
    /** @internal */ readonly native: AddonGrammarState,
    readonly grammar: NativeGrammar,
    /** @internal The same position in the grammar mirror (token masks); null = no masks. */
    readonly tracker: MirrorTracker | null,
  ) {}

  /** True once the grammar ended the generation (an end-of-generation token was sampled/accepted). */
  get completed(): boolean {
    return this.isCompleted;
  }

  /** True after a failure; the state must be dropped (a new one built from the grammar). */
  get broken(): boolean {
    return this.isBroken;
  }

  /** Whether the grammar may end here (llama.cpp lets end-of-generation tokens through). */
  canEnd(): boolean {
    this.ensureUsable();
    return this.owner.grammarBindings.AddonSampler.canBeNextTokenForGrammarEvaluationState(this.native, this.owner.eogToken);
  }

  /** Whether `token` may come next. */
  canAccept(token: number): boolean {
    this.ensureUsable();
    if (!this.owner.validToken(token)) return false;
    if (this.owner.model.isEogToken(token as never)) return this.canEnd();
    return this.owner.grammarBindings.AddonSampler.canBeNextTokenForGrammarEvaluationState(this.native, token);
  }

  /** Advance by a token the grammar did not sample itself; throws (and changes nothing) if it does not fit. */
  accept(token: number): void {
    if (!this.canAccept(token)) throw new Error(`token ${token} does not fit the grammar here`);
    this.acceptChecked(token);
  }

  /** @internal `accept` for a token `canAccept` has just said fits. */
  acceptChecked(token: number): void {
    if (this.owner.model.isEogToken(token as never)) {
      // llama.cpp's sampler never feeds end-of-generation tokens to the grammar either.
      this.isCompleted = true;
      return;
    }
    try {
      this.owner.grammarBindings.AddonSampler.acceptGrammarEvaluationStateToken(this.native, token);
    } catch (err) {
      this.isBroken = true;
      throw err;
    }
    this.tracker?.accept(token);
  }

  /** An independent copy (llama_sampler_clone), e.g. to try tokens without moving this one. */
  clone(): GrammarState {
    this.ensureUsable();
    const copy = new GrammarState(
      this.owner,
      new this.owner.grammarBindings.AddonGrammarEvaluationState(this.native),
      this.grammar,
      this.tracker?.clone() ?? null,
    );
    copy.isCompleted = this.isCompleted;
    return copy;
  }

  /** Drop this state (the native object is freed by the garbage collector once no sampler holds it). */
  dispose(): void {
    this.isDisposed = true;
  }

  /** @internal */
  markBroken(): void {
    this.isBroken = true;
  }

  /** @internal */
  markCompleted(): void {
    this.isCompleted = true;
  }

  /** @internal */
  ensureUsable(): void {
    if (this.isDisposed) throw new Error('GrammarState is disposed');
    if (this.isBroken) throw new Error('GrammarState is broken by an earlier failure; build a new one');
  }
}

export class InternalApiError extends Error {
  constructor(member: string) {
    super(
      `node-llama-cpp internal API changed: ${member} is missing. InferFlux drives llama.cpp through ` +
        `internals of node-llama-cpp ${PINNED_NODE_LLAMA_CPP}; pin that version or update src/runtime/llama/batch-adapter.ts.`,
    );
    this.name = 'InternalApiError';
  }
}

function requireInternal<V>(owner: object, key: string, label: string): V {
  const value = (owner as Record<string, unknown>)[key];
  if (value === undefined || value === null) throw new InternalApiError(label);
  return value as V;
}

/** One item of a batch: tokens for one sequence starting at `position`. */
export interface BatchItem {
  sequenceId: number;
  position: number;
  tokens: Uint32Array;
  /** Whether the last token of `tokens` needs logits (to sample the next token). */
  wantLogits: boolean;
  /**
   * Logits at EVERY token of `tokens` (speculative verification samples after each proposed
   * token); implies `wantLogits`. `decode` then fills `all[i]` with their batch indexes.
   */
  allLogits?: boolean;
}

const NO_LOGITS = new Uint32Array(0);

export interface GrammarSampleCounts {
  mask: number;
  free: number;
  redraw: number;
  fallback: number;
  llama: number;
}

/** What applySamplerConfig attached to a sampler with a grammar. */
interface SamplerGrammar {
  state: GrammarState;
  config: AddonSamplerConfig;
  next: Uint32Array | undefined;
  /** Whether this sampler gets token masks. */
  masks: boolean;
  mask: Uint32Array | null;
  /** This step samples with the grammar detached and checks the pick (drawFree). */
  free: boolean;
  /**
   * Tokens known not to fit this step, banned for it: the ones llama.cpp refused at this grammar
   * position before (MirrorTracker.refusedHere) and the ones drawn this step that did not fit.
   */
  refused: number[];
}

const NO_TOKENS: readonly number[] = [];

/** Free draws in a step before llama.cpp's own constrained pass decides (see drawFree). */
const FREE_DRAWS = 3;

/**
 * Logit bias that puts a mask's tokens above every other token: llama.cpp's logits stay within a
 * few tens of each other, so after any temperature up to 2 the rest keep no probability, while
 * the masked tokens keep their own differences (a float32 step at 3000 is 0.0002).
 */
const MASK_BIAS = 3000;

/** Context tokens LlamaModel.detokenize uses (node-llama-cpp 3.22.1 `maxRecentDetokenizerTokens`). */
const DETOKENIZE_CONTEXT_TOKENS = 3;

/**
 * A context driven one batch at a time. Not thread-safe and not re-entrant: the engine loop
 * awaits each step before building the next.
 */
export class BatchContext {
  private readonly addon: AddonContext;
  private readonly bindings: { AddonSampler: new (model: unknown) => AddonSampler };
  private readonly addonModel: unknown;
  private disposed = false;
  private grammarApi: GrammarBindings | undefined;
  /**
   * The grammar state each sampler holds, as last attached through applySamplerConfig, with the
   * caller's config, the guard's ban for the next step (grammar-token-guard.ts) and the token
   * mask applied for the next step (token-masks.ts).
   */
  private readonly samplerGrammar = new WeakMap<AddonSampler, SamplerGrammar>();
  private guard: GrammarTokenGuard | undefined;
  private masker: TokenMasker | undefined;
  /**
   * Constrained samples by how they were drawn (engine status, `inferflux_grammar_samples_total`):
   * `mask` (the tokens that fit were masked in), `free` (a free pick that fit), `redraw` (a free
   * pick after misfits were banned), `fallback` (llama.cpp's own pass after FREE_DRAWS misses),
   * `llama` (no mask: penalties, logprobs, a grammar too ambiguous to mirror).
   */
  readonly grammarSamples: GrammarSampleCounts = { mask: 0, free: 0, redraw: 0, fallback: 0, llama: 0 };
  private vocab: VocabInfo | undefined;
  private readonly vocabSize: number;
  /** The one-element logit index list given to addToBatch (reused; see decode). */
  private readonly lastLogit = new Uint32Array(1);
  /** llama.cpp threads of the next decode, as last set (0 = the context's own setting). */
  private threads = 0;
  /** @internal An end-of-generation token, to ask a grammar state whether it may end. */
  readonly eogToken: number;
  /** Greedy draws on this thread (see `sampleGreedy`), or null where the pool library is not loaded. */
  private readonly greedy: GreedyDraws | null;
  /** This context's handle for `greedy`, or 0n: every token is sampled natively. */
  private readonly greedyContext: bigint;

  constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
  ) {
    this.addon = requireInternal<AddonContext>(context, '_ctx', 'LlamaContext._ctx');
    for (const m of ['initBatch', 'addToBatch', 'decodeBatch', 'sampleToken', 'disposeSequence', 'setThreads'] as const) {
      if (typeof this.addon[m] !== 'function') throw new InternalApiError(`LlamaContext._ctx.${m}()`);
    }
    this.bindings = requireInternal(llama, '_bindings', 'Llama._bindings');
    if (typeof this.bindings.AddonSampler !== 'function') throw new InternalApiError('Llama._bindings.AddonSampler');
    this.addonModel = requireInternal(model, '_model', 'LlamaModel._model');
    const vocab = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
    this.vocabSize = Array.isArray(vocab) ? vocab.length : 0;
    const eog = model.tokens.eos ?? model.tokens.eot;
    this.eogToken = eog ?? -1;
    // Through llama_n_threads, this gives a multi-thread context its persistent pool now, where
    // one is loaded (src/runtime/llama/threadpool), even if no step ever changes its threads.
    this.setThreads(context.currentThreads);
    // That call went through llama_n_threads on this thread: the pool library saw the context.
    this.greedy = loadGreedyDraws();
    this.greedyContext = this.greedy?.lastContext() ?? 0n;
  }

  /** @internal Grammar members of the bindings, checked on first use. */
  get grammarBindings(): GrammarBindings {
    if (this.grammarApi) return this.grammarApi;
    const b = this.bindings as unknown as Partial<GrammarBindings>;
    if (typeof b.AddonGrammar !== 'function') throw new InternalApiError('Llama._bindings.AddonGrammar');
    if (typeof b.AddonGrammarEvaluationState !== 'function') throw new InternalApiError('Llama._bindings.AddonGrammarEvaluationState');
    const sampler = b.AddonSampler as unknown as Partial<GrammarBindings['AddonSampler']>;
    if (typeof sampler.acceptGrammarEvaluationStateToken !== 'function') throw new InternalApiError('AddonSampler.acceptGrammarEvaluationStateToken');
    if (typeof sampler.canBeNextTokenForGrammarEvaluationState !== 'function') {
      throw new InternalApiError('AddonSampler.canBeNextTokenForGrammarEvaluationState');
    }
    this.grammarApi = b as GrammarBindings;
    return this.grammarApi;
  }

  /** @internal */
  validToken(token: number): boolean {
    return Number.isInteger(token) && token >= 0 && token < this.vocabSize;
  }

  /**
   * Parse GBNF (root rule `root`) for this model's llama.cpp. The text is checked by checkGbnf
   * first, so nothing that could crash native code gets there; a grammar llama.cpp still refuses
   * is an `invalid_request` naming `param`. Build once per grammar and share it.
   */
  createGrammar(gbnf: string, param = 'grammar'): NativeGrammar {
    this.ensureNotDisposed();
    const rules = parseGbnf(gbnf, param);
    if (this.eogToken < 0) throw new InferFluxError('invalid_request', 'This model has no end-of-generation token, so a grammar cannot end.', { param });
    const api = this.grammarBindings;
    let native: AddonGrammar;
    try {
      native = new api.AddonGrammar(gbnf, { addonExports: this.bindings, rootRuleName: 'root' });
    } catch (err) {
      throw new InferFluxError('invalid_request', `The grammar is invalid: llama.cpp refused it (${(err as Error).message}).`, { param, cause: err });
    }
    // Built only after llama.cpp accepted the grammar (it refuses left recursion, which the mirror
    // would otherwise have to detect).
    let mirror: GrammarMirror | null = null;
    try {
      mirror = new GrammarMirror(rules);
    } catch (err) {
      if (!(err instanceof MirrorLimitError)) throw err;
    }
    return new NativeGrammar(native, gbnf, mirror);
  }

  /** A fresh evaluation state at the start of `grammar`, one per generation. */
  createGrammarState(grammar: NativeGrammar): GrammarState {
    this.ensureNotDisposed();
    const tracker = grammar.mirror ? this.tokenMasker().track(grammar.mirror) : null;
    return new GrammarState(this, new this.grammarBindings.AddonGrammarEvaluationState(this.addonModel, grammar.native), grammar, tracker);
  }

  /**
   * Apply sampler settings, with `grammar` attached (or none). Every (re)configuration of a
   * sampler that should stay constrained must come through here with its grammar: a plain
   * `applyConfig` detaches it. With a grammar, the token guard's bans (grammar-token-guard.ts:
   * control/unknown tokens, overlong UTF-8) are added to the config's token biases.
   */
  applySamplerConfig(sampler: AddonSampler, config: AddonSamplerConfig, grammar: GrammarState | null, options: { masks?: boolean } = {}): void {
    this.ensureNotDisposed();
    if (grammar) {
      grammar.ensureUsable();
      const known = this.samplerGrammar.get(sampler);
      const entry: SamplerGrammar = {
        state: grammar,
        config,
        next: known?.state === grammar ? known.next : undefined,
        // A mask is a logit bias before the penalties, which would scale it (llama.cpp divides a
        // positive logit by the repeat penalty): masks only without penalties.
        masks: (options.masks ?? true) && grammar.tracker !== null && config.repeatPenaltyTokens === undefined,
        mask: null,
        free: false,
        refused: [],
      };
      entry.mask = entry.masks && !grammar.completed ? grammar.tracker!.mask() : null;
      entry.free = entry.masks && entry.mask === null && !grammar.completed;
      if (entry.free) entry.refused = [...grammar.tracker!.refusedHere()];
      this.samplerGrammar.set(sampler, entry);
      this.applyGuarded(sampler, entry);
    } else {
      sampler.applyConfig(config);
      this.samplerGrammar.delete(sampler);
    }
  }

  private applyGuarded(sampler: AddonSampler, entry: SamplerGrammar): void {
    const guard = this.tokenGuard();
    const base = entry.config;
    const bans = entry.next ? [guard.banned, entry.next] : [guard.banned];
    const bansLength = bans.reduce((n, a) => n + a.length, 0);
    const baseLength = base.tokenBiasKeys?.length ?? 0;
    const maskLength = entry.mask?.length ?? 0;
    const keys = new Uint32Array(baseLength + bansLength + entry.refused.length + maskLength);
    const values = new Float32Array(keys.length).fill(-Infinity);
    if (base.tokenBiasKeys) keys.set(base.tokenBiasKeys);
    if (base.tokenBiasValues) values.set(base.tokenBiasValues);
    let at = baseLength;
    for (const a of bans) {
      keys.set(a, at);
      at += a.length;
    }
    keys.set(entry.refused, at);
    at += entry.refused.length;
    const cfg: AddonSamplerConfig = keys.length > 0 ? { ...base, tokenBiasKeys: keys, tokenBiasValues: values } : { ...base };
    if (entry.mask) {
      keys.set(entry.mask, at);
      values.fill(MASK_BIAS, at);
      // Only the masked tokens keep any probability, so cutting the candidates to them (top-k
      // after the bias) changes no outcome and spares the softmax over the whole vocabulary.
      cfg.topK = Math.min(base.topK ?? Infinity, entry.mask.length);
    }
    sampler.applyConfig(entry.free ? cfg : ({ ...cfg, grammarEvaluationState: entry.state.native } as AddonSamplerConfig));
  }

  /** The GGUF vocabulary as the grammar helpers need it (read once). */
  private vocabInfo(): VocabInfo {
    if (!this.vocab) {
      const tk = this.model.fileInfo.metadata.tokenizer as { model?: string; ggml?: { tokens?: unknown; token_type?: unknown; model?: string } } | undefined;
      const tokens = Array.isArray(tk?.ggml?.tokens) ? (tk!.ggml!.tokens as string[]) : [];
      const types = Array.isArray(tk?.ggml?.token_type) ? (tk!.ggml!.token_type as number[]) : undefined;
      this.vocab = { tokens, types, model: tk?.ggml?.model, isEog: (t) => this.model.isEogToken(t as never) };
    }
    return this.vocab;
  }

  /** @internal Tokens a grammar-constrained generation must not sample (built once, on first use). */
  tokenGuard(): GrammarTokenGuard {
    this.guard ??= buildGrammarTokenGuard(this.vocabInfo());
    return this.guard;
  }

  /** @internal Token masks for grammar mirrors (built once, on first use). */
  tokenMasker(): TokenMasker {
    if (!this.masker) {
      const vocab = this.vocabInfo();
      const eog: number[] = [];
      for (let t = 0; t < vocab.tokens.length; t++) if (vocab.isEog(t)) eog.push(t);
      this.masker = new TokenMasker(tokenPieces(vocab), eog);
    }
    return this.masker;
  }

  /** llama.cpp threads for the following decodes (llama_set_n_threads; cheap, skipped when unchanged). */
  setThreads(threads: number): void {
    this.ensureNotDisposed();
    if (threads === this.threads) return;
    this.addon.setThreads(threads);
    this.threads = threads;
  }

  /**
   * Evaluate one batch. Returns, per item, the batch logit index of its last token, or -1 when
   * the item asked for no logits. Throws if the total exceeds the context's batch size; the
   * caller sizes batches from `context.batchSize`.
   */
  async decode(items: readonly BatchItem[], all?: (Uint32Array | undefined)[]): Promise<Int32Array> {
    this.ensureNotDisposed();
    let total = 0;
    for (const item of items) total += item.tokens.length;
    const logitIndexes = new Int32Array(items.length).fill(-1);
    if (total === 0) return logitIndexes;
    this.addon.initBatch(total);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.allLogits) {
        const idx = this.addon.addToBatch(item.sequenceId, item.position, item.tokens, Uint32Array.from(item.tokens, (_, j) => j));
        logitIndexes[i] = idx[idx.length - 1]!;
        if (all) all[i] = Uint32Array.from(idx);
        continue;
      }
      // addToBatch reads the logit index synchronously: one reused buffer, no array per token.
      let want = NO_LOGITS;
      if (item.wantLogits) {
        want = this.lastLogit;
        want[0] = item.tokens.length - 1;
      }
      const idx = this.addon.addToBatch(item.sequenceId, item.position, item.tokens, want);
      if (item.wantLogits) logitIndexes[i] = idx[0]!;
    }
    await this.addon.decodeBatch();
    return logitIndexes;
  }

  /**
   * The token llama.cpp's greedy sampler would draw at `logitIndex` of the last decoded batch
   * (the first highest logit), skipping `banned`, read on this thread instead of through an
   * AsyncWorker; -2 where this process cannot (then `sample`). Only for a sampler whose chain is
   * greedy alone: temperature 0 and no bias, penalties or grammar. Call before any `sample` of
   * the same batch is in flight (llama.cpp's logits accessor is not safe to race with itself).
   */
  sampleGreedy(logitIndex: number, banned: Uint32Array): number {
    if (this.greedyContext === 0n) return -2;
    this.ensureNotDisposed();
    return this.greedy!.argmax(this.greedyContext, logitIndex, banned);
  }

  /**
   * Sample from the logits at `logitIndex` of the last decoded batch. -1 means no candidate.
   * With a grammar attached (applySamplerConfig), only tokens the grammar allows are sampled and
   * llama.cpp advances the grammar state by the token itself; an end-of-generation token then
   * means the grammar is complete (`grammar.completed`). It is sampled even when a token bias
   * bans it (ignore_eos, min_tokens), because a complete grammar allows nothing else: the caller
   * must end the generation there. A failed sample breaks the state (see GrammarState).
   */
  sample(logitIndex: number, sampler: AddonSampler): Promise<number> {
    // Without a grammar there is no bookkeeping: the native promise itself, with no closure,
    // wrapper promise or result object per token.
    if (!this.samplerGrammar.has(sampler)) {
      this.ensureNotDisposed();
      return this.addon.sampleToken(logitIndex, sampler);
    }
    return this.sampleVia(sampler, () => this.addon.sampleToken(logitIndex, sampler)).then((r) => r.token);
  }

  /**
   * `sample`, also reporting the sampled token's log probability and the `top` most likely tokens'
   * (descending), from the raw logits: logprob = logit - maxLogit - ln(sum exp(logit - maxLogit)),
   * node-llama-cpp's `totalLogitWeight` being that sum (notes §2).
   */
  async sampleWithLogprobs(logitIndex: number, sampler: AddonSampler, top: number): Promise<SampledLogprobs> {
    const sampleToken = this.addon.sampleToken as unknown as SampleTokenWithLogits;
    let raw: { logits: number[] | undefined; weight: number | undefined } = { logits: undefined, weight: undefined };
    const { token } = await this.sampleVia(sampler, async () => {
      // Asked for: the max logit, the top `top`, and the selected token, in that order, as flat pairs.
      const [t, , , logits, weight] = await sampleToken.call(this.addon, logitIndex, sampler, false, false, [[], true, false, true, top], true);
      raw = { logits, weight };
      return t;
    });
    const { logits, weight } = raw;
    if (!logits || logits.length < 4 || weight === undefined || !(weight > 0)) throw new InternalApiError('sampleToken(..., logits) result');
    const norm = logits[1]! + Math.log(weight);
    const pairs: [number, number][] = [];
    for (let i = 2; i + 1 < logits.length - 2; i += 2) pairs.push([logits[i]!, logits[i + 1]! - norm]);
    return { token, logprob: logits[logits.length - 1]! - norm, top: pairs.slice(0, top) };
  }

  /** One native sample, with the grammar bookkeeping when the sampler holds a grammar state. */
  private async sampleVia(sampler: AddonSampler, draw: () => Promise<number>): Promise<{ token: number }> {
    this.ensureNotDisposed();
    const entry = this.samplerGrammar.get(sampler);
    if (!entry) return { token: await draw() };
    const grammar = entry.state;
    grammar.ensureUsable();
    let token: number;
    try {
      token = entry.free ? await this.drawFree(sampler, entry, draw) : await this.drawNative(entry, draw);
    } catch (err) {
      grammar.markBroken();
      throw err;
    }
    // A ban for the next step only (overlong UTF-8 after a lone E0/F0 byte), set or lifted, and
    // the next step's mask (masks are kept per grammar position, so an unchanged one is the same
    // array) or, where too many tokens fit for a mask, a free pick.
    const next = token >= 0 ? this.tokenGuard().after(token) : undefined;
    const mask = entry.masks && !grammar.completed ? grammar.tracker!.mask() : null;
    const free = entry.masks && mask === null && !grammar.completed;
    const learned = free ? grammar.tracker!.refusedHere() : NO_TOKENS;
    if (next !== entry.next || mask !== entry.mask || free !== entry.free || entry.refused.length > 0 || learned.length > 0) {
      entry.next = next;
      entry.mask = mask;
      entry.free = free;
      entry.refused = [...learned];
      this.applyGuarded(sampler, entry);
    }
    return { token };
  }

  /**
   * A step where too many tokens fit for a mask (inside a free string): sample with the grammar
   * detached and ask llama.cpp's grammar whether that one token fits (a single-token check). A
   * token that does not fit is banned for this step and the step sampled again, which draws from
   * the same distribution without it; after FREE_DRAWS misses, llama.cpp's own constrained pass
   * (the whole vocabulary) decides.
   */
  private async drawFree(sampler: AddonSampler, entry: SamplerGrammar, draw: () => Promise<number>): Promise<number> {
    const grammar = entry.state;
    for (let i = 0; i < FREE_DRAWS; i++) {
      const token = await draw();
      if (token < 0) return token;
      if (grammar.canAccept(token)) {
        grammar.acceptChecked(token);
        this.grammarSamples[i === 0 && entry.refused.length === 0 ? 'free' : 'redraw']++;
        return token;
      }
      entry.refused.push(token);
      grammar.tracker!.noteRefused(token);
      this.applyGuarded(sampler, entry);
    }
    entry.free = false;
    this.applyGuarded(sampler, entry);
    this.grammarSamples.fallback++;
    return this.drawNative(entry, draw, false);
  }

  /** A draw with the grammar attached: llama.cpp advances its grammar state itself. */
  private async drawNative(entry: SamplerGrammar, draw: () => Promise<number>, count = true): Promise<number> {
    if (count) this.grammarSamples[entry.mask ? 'mask' : 'llama']++;
    const token = await draw();
    if (token >= 0 && this.model.isEogToken(token as never)) entry.state.markCompleted();
    if (token >= 0) entry.state.tracker?.accept(token);
    return token;
  }

  /**
   * `model.detokenize(tokens, false, lastTokens)` for the engine's token stream, without the
   * arrays node-llama-cpp builds per call (a slice, a spread and two or three Uint32Arrays per
   * token): the same steps as its LlamaModel.detokenize (3.22.1: the last
   * DETOKENIZE_CONTEXT_TOKENS tokens of `lastTokens` as context; their text is cut from the
   * front of the joint text when it starts with it, else the tokens are detokenized alone), on
   * one reused buffer with a cached view per length. Both lists are only read during the call.
   */
  detokenizer(): (tokens: readonly number[], lastTokens: readonly number[]) => string {
    const addonModel = this.addonModel as { detokenize?: (tokens: Uint32Array, special: boolean) => string };
    if (typeof addonModel.detokenize !== 'function') throw new InternalApiError('LlamaModel._model.detokenize()');
    let buf = new Uint32Array(16);
    let views: Uint32Array[] = [];
    const text = (a: readonly number[], from: number, b: readonly number[]): string => {
      const n = a.length - from + b.length;
      if (n > buf.length) {
        buf = new Uint32Array(2 * n);
        views = [];
      }
      let k = 0;
      for (let i = from; i < a.length; i++) buf[k++] = a[i]!;
      for (let i = 0; i < b.length; i++) buf[k++] = b[i]!;
      const view = (views[n] ??= buf.subarray(0, n));
      return addonModel.detokenize!(view, false);
    };
    const none: readonly number[] = [];
    return (tokens, lastTokens) => {
      this.ensureNotDisposed();
      if (tokens.length === 0) return '';
      if (lastTokens.length === 0) return text(tokens, 0, none);
      const from = Math.max(0, lastTokens.length - DETOKENIZE_CONTEXT_TOKENS);
      const contextText = text(lastTokens, from, none);
      if (contextText === '') return text(tokens, 0, none);
      const joint = text(lastTokens, from, tokens);
      if (joint.startsWith(contextText)) return joint.slice(contextText.length);
      return text(tokens, 0, none);
    };
  }

  createSampler(): AddonSampler {
    this.ensureNotDisposed();
    return new this.bindings.AddonSampler(this.addonModel);
  }

  /** Remove every KV cell of a sequence so its slot can take a new request. */
  clearSequence(sequenceId: number): void {
    this.ensureNotDisposed();
    this.addon.disposeSequence(sequenceId);
  }

  /**
   * Save one sequence's KV cells and `tokens` (stored in the file's header, returned by
   * `loadSequence`) to `filePath` (`llama_state_seq_save_file`). Resolves to the file size.
   * The file only loads into a context with the same `sequences` count unless it goes through
   * `retargetSequenceState` (src/runtime/kv/seq-state-file.ts). Stage it on tmpfs (`/dev/shm`).
   */
  saveSequence(sequenceId: number, tokens: Uint32Array, filePath: string): Promise<number> {
    this.ensureNotDisposed();
    return this.stateMethod('saveSequenceStateToFile').call(this.addon, filePath, sequenceId, tokens);
  }

  /**
   * Replace sequence `sequenceId`'s KV cells with the state in `filePath`
   * (`llama_state_seq_load_file`: it first removes every cell of the sequence). Resolves to the
   * tokens stored in the file. Rejects when the file holds more than `maxContextSize` tokens, has
   * another stream count (`n_stream mismatch`) or does not fit the free cells. The file is read
   * by native code: only load files this process wrote or validated.
   */
  loadSequence(sequenceId: number, filePath: string, maxContextSize: number): Promise<Uint32Array> {
    this.ensureNotDisposed();
    return this.stateMethod('loadSequenceStateFromFile').call(this.addon, filePath, sequenceId, maxContextSize);
  }

  /**
   * Make `target` hold every KV cell `source` holds (`llama_memory_seq_cp`; the target's own cells
   * are dropped). Resolves to the source's last position, -1 if it held none (the target is then
   * empty). With one KV stream per sequence (node-llama-cpp's contexts) the cells' positions are
   * copied now and their data by the context's next decode, before it computes: until that decode
   * nothing may load into, save or trim `source` (the copy would read what replaced its cells) or
   * save `target` (its data is not there yet). Trimming `target` right away is fine.
   */
  copySequence(target: number, source: number): Promise<number> {
    this.ensureNotDisposed();
    return this.stateMethod('copySequenceStateFromOtherSequence').call(this.addon, target, source);
  }

  /**
   * Remove the sequence's cells at positions `>= fromPos` (`llama_memory_seq_rm(seq, fromPos, -1)`;
   * a negative end means "to the end", llama.h). The next token then goes at `fromPos`. Returns
   * false when the memory cannot drop part of a sequence (recurrent models): clear and re-evaluate.
   */
  trimSequence(sequenceId: number, fromPos: number): boolean {
    this.ensureNotDisposed();
    return this.stateMethod('removeTokenCellsFromSequence').call(this.addon, sequenceId, fromPos, -1);
  }

  /**
   * Load a LoRA adapter file into llama.cpp for this model (cached per model by resolved path:
   * node-llama-cpp's internal `LlamaModel._getOrLoadLora`), without applying it. The file must
   * have passed `checkLoraAdapter` (runtime/gguf/lora.ts): llama.cpp asserts on some bad files.
   */
  async loadLora(filePath: string): Promise<void> {
    this.ensureNotDisposed();
    const load = requireInternal<(p: string) => Promise<unknown>>(this.model, '_getOrLoadLora', 'LlamaModel._getOrLoadLora()');
    await load.call(this.model, filePath);
  }

  /**
   * Apply exactly these adapters to the whole context (every sequence), replacing the previous
   * set; `[]` is the base model (internal `LlamaContext._setLoras`, ~0.05 ms). KV cells computed
   * under the previous set stay in the sequences: the caller clears them.
   */
  async setLoras(adapters: readonly { filePath: string; scale: number }[]): Promise<void> {
    this.ensureNotDisposed();
    const set = requireInternal<(l: { filePath: string; scale: number }[]) => Promise<void>>(this.context, '_setLoras', 'LlamaContext._setLoras()');
    await set.call(this.context, adapters.map((a) => ({ ...a })));
  }

  dispose(): void {
    this.disposed = true;
  }

  private stateMethod<K extends keyof AddonSequenceState>(name: K): AddonSequenceState[K] {
    const fn = requireInternal<AddonSequenceState[K]>(this.addon, name, `LlamaContext._ctx.${name}()`);
    if (typeof fn !== 'function') throw new InternalApiError(`LlamaContext._ctx.${name}()`);
    return fn;
  }

  private ensureNotDisposed(): void {
    if (this.disposed) throw new Error('BatchContext is disposed');
  }
}
