/**
 * Sampling and stopping settings: the one shape they have from the request edge to the engine.
 *
 *   protocol fields --(one mapping per protocol, in its route folder)--> SamplingSettings
 *   SamplingSettings --(resolveSampling, src/generation: model-dependent checks)--> EngineSampling
 *   EngineSampling --(toNativeSamplerConfig, src/runtime/llama)--> llama.cpp's sampler config
 *
 * The response cache keys on the resolved settings as a whole (canonical JSON), so nothing that
 * shapes the output is left out of the key by accident. A new option is one field here (with its
 * default), one line in each protocol mapping that offers it, and one line in the native translation.
 */

export interface SamplingSettings {
  /** Upper bound on generated tokens; null = until the context is full. */
  maxTokens: number | null;
  temperature: number;
  topP: number;
  /** 0 disables top-k. */
  topK: number;
  /** 0 disables min-p. */
  minP: number;
  /** Fixed seed for reproducible sampling; null = a random one per request. */
  seed: number | null;
  stop: string[];
  presencePenalty: number;
  frequencyPenalty: number;
  /** 1 is llama.cpp's "off". */
  repeatPenalty: number;
  /** [token id, bias] pairs; a bias of -100 or less bans the token. Ids are checked against the vocabulary. */
  logitBias: [number, number][];
  /** Keep generating through end-of-generation tokens (benchmarks; llama.cpp/vLLM extension). */
  ignoreEos: boolean;
  /** Suppress end-of-generation before this many tokens (vLLM extension). */
  minTokens: number;
  /**
   * Report each generated token's log probability and those of the `logprobs` most likely
   * alternatives (0..20), from the model's raw distribution (before temperature and filters, as
   * vLLM does); null = none.
   */
  logprobs: number | null;
  /**
   * GBNF the output must follow (checked and compiled on the main thread: response_format, a raw
   * `grammar`, a required tool call); null = free text. The grammar ends the generation.
   */
  grammar: string | null;
}

/** Settings as the engine runs them: every open value decided. */
export interface EngineSampling extends SamplingSettings {
  maxTokens: number;
  seed: number;
}

/**
 * OpenAI's semantics where a protocol leaves a field out: temperature 1, top_p 1, no top-k or
 * min-p, no penalties, no length cap of its own (routes set theirs).
 */
export const DEFAULT_SAMPLING: Readonly<SamplingSettings> = Object.freeze({
  maxTokens: null,
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  seed: null,
  stop: [],
  presencePenalty: 0,
  frequencyPenalty: 0,
  repeatPenalty: 1,
  logitBias: [],
  ignoreEos: false,
  minTokens: 0,
  logprobs: null,
  grammar: null,
});

/** Some of the settings; `undefined` means "not set". */
export type SamplingFields = { [K in keyof SamplingSettings]?: SamplingSettings[K] | undefined };

/**
 * The defaults with the fields a request set; `undefined` means "not set" and keeps the default.
 * `under` is a layer of defaults between those and the request's (a model preset's parameters).
 */
export function samplingWith(fields: SamplingFields, under: SamplingFields = {}): SamplingSettings {
  const out: SamplingSettings = { ...DEFAULT_SAMPLING, stop: [], logitBias: [] };
  for (const layer of [under, fields]) {
    for (const key of Object.keys(layer) as (keyof SamplingSettings)[]) {
      const value = layer[key];
      if (value !== undefined) (out as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return out;
}
