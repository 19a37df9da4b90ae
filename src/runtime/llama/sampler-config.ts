/**
 * Resolved sampling settings -> llama.cpp's sampler chain config (the internal `AddonSampler`):
 * the one translation from our settings to native values.
 */
import type { EngineSampling } from '../sampling.js';
import type { AddonSamplerConfig } from './batch-adapter.js';

/** Tokens of history the repetition penalties look at (llama.cpp's default penalty_last_n). */
export const PENALTY_WINDOW = 64;

/** OpenAI's -100 effectively bans a token; llama.cpp bans with -Infinity. */
const BAN_AT = -100;

export function toNativeSamplerConfig(s: EngineSampling, history: readonly number[] = []): AddonSamplerConfig {
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
  if (s.logitBias.length > 0) {
    cfg.tokenBiasKeys = Uint32Array.from(s.logitBias, ([token]) => token);
    cfg.tokenBiasValues = Float32Array.from(s.logitBias, ([, bias]) => (bias <= BAN_AT ? -Infinity : bias));
  }
  return cfg;
}
