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

  constructor(
    readonly native: AddonSampler,
    private readonly base: AddonSamplerConfig,
    private readonly eog: Uint32Array,
    history: readonly number[] = [],
    /** Alternatives to report with each sampled token's log probability; null = no log probabilities. */
    readonly logprobs: number | null = null,
    /**
     * Applies a config to the native sampler. With a grammar this must be the batch adapter's
     * `applySamplerConfig` with the request's grammar state: a plain `applyConfig` detaches it.
     */
    private readonly apply: (cfg: AddonSamplerConfig) => void = (cfg) => native.applyConfig(cfg),
  ) {
    this.usesPenalty = base.repeatPenaltyTokens !== undefined;
    this.history = this.usesPenalty ? history.slice(-PENALTY_WINDOW) : [];
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
