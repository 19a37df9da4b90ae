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

export const PINNED_NODE_LLAMA_CPP = '3.22.1';

/** Internal addon context surface we rely on (AddonTypes.d.ts, `AddonContext`). */
interface AddonContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstTokenSequenceIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(batchLogitIndex: number, sampler: AddonSampler): Promise<number>;
  disposeSequence(sequenceId: number): void;
}

/**
 * Internal addon members for sequence state, checked on first use (not in the constructor, so a
 * context that never saves state does not depend on them). AddonTypes.d.ts, `AddonContext`.
 */
interface AddonSequenceState {
  saveSequenceStateToFile(filePath: string, sequenceId: number, tokens: Uint32Array): Promise<number>;
  loadSequenceStateFromFile(filePath: string, sequenceId: number, maxContextSize: number): Promise<Uint32Array>;
  removeTokenCellsFromSequence(sequenceId: number, startPos: number, endPos: number): boolean;
}

/** Internal addon sampler (AddonTypes.d.ts, `AddonSampler`). */
export interface AddonSampler {
  dispose(): void;
  applyConfig(config: AddonSamplerConfig): void;
}

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
}

const NO_LOGITS = new Uint32Array(0);

/**
 * A context driven one batch at a time. Not thread-safe and not re-entrant: the engine loop
 * awaits each step before building the next.
 */
export class BatchContext {
  private readonly addon: AddonContext;
  private readonly bindings: { AddonSampler: new (model: unknown) => AddonSampler };
  private readonly addonModel: unknown;
  private disposed = false;

  constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
  ) {
    this.addon = requireInternal<AddonContext>(context, '_ctx', 'LlamaContext._ctx');
    for (const m of ['initBatch', 'addToBatch', 'decodeBatch', 'sampleToken', 'disposeSequence'] as const) {
      if (typeof this.addon[m] !== 'function') throw new InternalApiError(`LlamaContext._ctx.${m}()`);
    }
    this.bindings = requireInternal(llama, '_bindings', 'Llama._bindings');
    if (typeof this.bindings.AddonSampler !== 'function') throw new InternalApiError('Llama._bindings.AddonSampler');
    this.addonModel = requireInternal(model, '_model', 'LlamaModel._model');
  }

  /**
   * Evaluate one batch. Returns, per item, the batch logit index of its last token, or -1 when
   * the item asked for no logits. Throws if the total exceeds the context's batch size; the
   * caller sizes batches from `context.batchSize`.
   */
  async decode(items: readonly BatchItem[]): Promise<Int32Array> {
    this.ensureNotDisposed();
    let total = 0;
    for (const item of items) total += item.tokens.length;
    const logitIndexes = new Int32Array(items.length).fill(-1);
    if (total === 0) return logitIndexes;
    this.addon.initBatch(total);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const want = item.wantLogits ? Uint32Array.of(item.tokens.length - 1) : NO_LOGITS;
      const idx = this.addon.addToBatch(item.sequenceId, item.position, item.tokens, want);
      if (item.wantLogits) logitIndexes[i] = idx[0]!;
    }
    await this.addon.decodeBatch();
    return logitIndexes;
  }

  /** Sample from the logits at `logitIndex` of the last decoded batch. -1 means no candidate. */
  sample(logitIndex: number, sampler: AddonSampler): Promise<number> {
    this.ensureNotDisposed();
    return this.addon.sampleToken(logitIndex, sampler);
  }

  /**
   * Sample, and report the sampled token's log probability and the `top` most likely tokens'
   * (descending), from the raw logits: logprob = logit - maxLogit - ln(sum exp(logit - maxLogit)),
   * node-llama-cpp's `totalLogitWeight` being that sum (notes §2).
   */
  async sampleWithLogprobs(logitIndex: number, sampler: AddonSampler, top: number): Promise<SampledLogprobs> {
    this.ensureNotDisposed();
    const sampleToken = this.addon.sampleToken as unknown as SampleTokenWithLogits;
    // Asked for: the max logit, the top `top`, and the selected token, in that order, as flat pairs.
    const [token, , , logits, weight] = await sampleToken.call(this.addon, logitIndex, sampler, false, false, [[], true, false, true, top], true);
    if (!logits || logits.length < 4 || weight === undefined || !(weight > 0)) throw new InternalApiError('sampleToken(..., logits) result');
    const max = logits[1]!;
    const norm = max + Math.log(weight);
    const pairs: [number, number][] = [];
    for (let i = 2; i + 1 < logits.length - 2; i += 2) pairs.push([logits[i]!, logits[i + 1]! - norm]);
    const selected = logits.length >= 2 ? logits[logits.length - 1]! - norm : -Infinity;
    return { token, logprob: selected, top: pairs.slice(0, top) };
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
   * Remove the sequence's cells at positions `>= fromPos` (`llama_memory_seq_rm(seq, fromPos, -1)`;
   * a negative end means "to the end", llama.h). The next token then goes at `fromPos`. Returns
   * false when the memory cannot drop part of a sequence (recurrent models): clear and re-evaluate.
   */
  trimSequence(sequenceId: number, fromPos: number): boolean {
    this.ensureNotDisposed();
    return this.stateMethod('removeTokenCellsFromSequence').call(this.addon, sequenceId, fromPos, -1);
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
