/**
 * llama.cpp's sampler chain for one request, as the engine core's `SlotSampler`: temperature,
 * top-k/p, min-p, seed, repetition penalties and logit bias, plus the end-of-generation ban that
 * `ignore_eos` and `min_tokens` need. The native sampler comes from the batch adapter.
 */
import type { AdmitBody } from '../protocol.js';
import type { AddonSampler, AddonSamplerConfig } from '../../runtime/llama/batch-adapter.js';
import type { SlotSampler } from './core.js';

/** Tokens of history the repetition penalties look at (llama.cpp's default penalty_last_n). */
const PENALTY_WINDOW = 64;

export class LlamaSlotSampler implements SlotSampler {
  private readonly history: number[];
  private readonly usesPenalty: boolean;

  constructor(
    readonly native: AddonSampler,
    private readonly base: AddonSamplerConfig,
    private readonly eog: Uint32Array,
    history: readonly number[] = [],
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
    this.native.applyConfig(cfg);
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

export function samplerConfig(req: AdmitBody, history: readonly number[] = []): AddonSamplerConfig {
  const s = req.sampling;
  const cfg: AddonSamplerConfig = { temperature: s.temperature, seed: s.seed >>> 0 };
  // Disabled filters are left out entirely: top_k 0 would otherwise sort the whole vocabulary.
  if (s.topK > 0) cfg.topK = s.topK;
  if (s.topP < 1) cfg.topP = s.topP;
  if (s.minP > 0) cfg.minP = s.minP;
  if (s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0) {
    cfg.repeatPenalty = s.repeatPenalty;
    cfg.repeatPenaltyPresencePenalty = s.presencePenalty;
    cfg.repeatPenaltyFrequencyPenalty = s.frequencyPenalty;
    cfg.repeatPenaltyMaxTokens = PENALTY_WINDOW;
    cfg.repeatPenaltyTokens = Uint32Array.from(history.slice(-PENALTY_WINDOW));
  }
  if (s.biasTokens.length > 0) {
    cfg.tokenBiasKeys = Uint32Array.from(s.biasTokens);
    cfg.tokenBiasValues = Float32Array.from(s.biasValues);
  }
  return cfg;
}
