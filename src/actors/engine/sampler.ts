/**
 * llama.cpp's sampler chain for one request, as the engine core's `SlotSampler`: temperature,
 * top-k/p, min-p, seed, repetition penalties and logit bias, plus the end-of-generation ban that
 * `ignore_eos` and `min_tokens` need. The native sampler comes from the batch adapter, its config
 * from `toNativeSamplerConfig` (runtime/llama/sampler-config.ts).
 */
import type { AddonSampler, AddonSamplerConfig } from '../../runtime/llama/batch-adapter.js';
import { PENALTY_WINDOW } from '../../runtime/llama/sampler-config.js';
import type { SlotSampler } from './core.js';

export class LlamaSlotSampler implements SlotSampler {
  private readonly history: number[];
  private readonly usesPenalty: boolean;
  private readonly apply: (cfg: AddonSamplerConfig) => void;
  /**
   * Tokens a greedy draw skips (BatchContext.sampleGreedy) while llama.cpp's chain for this
   * request is its greedy sampler alone, plus the end-of-generation ban's bias: temperature 0,
   * no logit bias, penalties or grammar, no log probabilities. Null: the native sampler draws.
   */
  greedyBan: Uint32Array | null;
  private readonly greedyOnly: boolean;

  constructor(
    readonly native: AddonSampler,
    private readonly base: AddonSamplerConfig,
    private readonly eog: Uint32Array,
    history: readonly number[] = [],
    /** Alternatives to report with each sampled token's log probability; null = no log probabilities. */
    readonly logprobs: number | null = null,
    /**
     * Applies a config to the native sampler when the request has a grammar: the batch adapter's
     * `applySamplerConfig` with the request's grammar state (a plain `applyConfig` detaches it).
     */
    constrained?: (cfg: AddonSamplerConfig) => void,
  ) {
    this.usesPenalty = base.repeatPenaltyTokens !== undefined;
    this.history = this.usesPenalty ? history.slice(-PENALTY_WINDOW) : [];
    this.apply = constrained ?? ((cfg) => native.applyConfig(cfg));
    this.greedyOnly = (base.temperature ?? 0) <= 0 && logprobs === null && !constrained && Object.keys(base).every((k) => GREEDY_CHAIN_FREE.has(k));
    this.greedyBan = this.greedyOnly ? NO_TOKENS : null;
  }

  setEogBan(banned: boolean): void {
    const cfg: AddonSamplerConfig = { ...this.base };
    if (banned) {
      const keys = new Uint32Array((this.base.tokenBiasKeys?.length ?? 0) + this.eog.length);
      const values = new Float32Array(keys.length);
      if (this.base.tokenBiasKeys) keys.set(this.base.tokenBiasKeys);
      if (this.base.tokenBiasValues) values.set(this.base.tokenBiasValues);
      keys.set(this.eog, this.base.tokenBiasKeys?.length ?? 0);
      values.fill(-Infinity, this.base.tokenBiasKeys?.length ?? 0);
      cfg.tokenBiasKeys = keys;
      cfg.tokenBiasValues = values;
    }
    // Re-applying must hand the sampler its own history back, or llama.cpp rebuilds the
    // penalty sampler empty (AddonSampler compares the given history with its ring buffer).
    if (this.usesPenalty) cfg.repeatPenaltyTokens = Uint32Array.from(this.history.slice(-PENALTY_WINDOW));
    this.apply(cfg);
    if (this.greedyOnly) this.greedyBan = banned ? this.eog : NO_TOKENS;
  }

  record(token: number): void {
    if (!this.usesPenalty) return;
    this.history.push(token);
    if (this.history.length > PENALTY_WINDOW * 2) this.history.splice(0, this.history.length - PENALTY_WINDOW);
  }

  dispose(): void {
    this.native.dispose();
  }
}

const NO_TOKENS = new Uint32Array(0);
/**
 * Config keys that leave node-llama-cpp's chain at temperature 0 the greedy sampler alone
 * (AddonSampler::rebuildChainIfNeeded: top-k/p and min-p only join a sampling chain); any other
 * key (bias, penalties, XTC, DRY, a grammar) adds a stage a greedy draw would not apply.
 */
const GREEDY_CHAIN_FREE = new Set(['temperature', 'seed', 'topK', 'topP', 'minP']);
