/**
 * Ollama's request `options` (its Modelfile parameters) onto the one `SamplingSettings` shape.
 * Absent options take Ollama's documented defaults (temperature 0.8, top_k 40, top_p 0.9,
 * repeat_penalty 1.1, num_predict -1 = no cap), not OpenAI's: Ollama clients expect Ollama's
 * behaviour. Every option Ollama documents is named here, and nothing else is accepted (an unknown
 * key is a 400 naming it):
 * - honoured: the sampling options, `num_ctx` (or refused, never silently truncated: see
 *   `checkNumCtx`), `repeat_last_n` as 64 (the penalty window here, Ollama's default) or 0 (no
 *   penalties);
 * - refused unless off: samplers llama.cpp here does not run (mirostat, typical_p, tfs_z),
 *   `vocab_only`, other `repeat_last_n` windows;
 * - accepted without effect, because they cannot change an answer here: hardware and loading
 *   options (num_gpu, num_thread, use_mmap...: the server decides those for every client),
 *   `num_keep` (which tokens survive a context shift; this server never shifts, it refuses what
 *   does not fit), mirostat's tau and eta while mirostat is off, and `penalize_newline`, which
 *   Ollama itself no longer applies.
 */
import type { LimitsConfig } from '../../../config/types.js';
import { InferFluxError } from '../../../errors.js';
import { samplingWith, type SamplingSettings } from '../../../runtime/sampling.js';
import type { PresetParameters } from '../../../runtime/models/preset-store.js';
import { PENALTY_WINDOW } from '../../../runtime/llama/sampler-config.js';

/** The options this server runs (a created model's PARAMETERs take the same), and the samplers it refuses unless off. */
export interface OllamaOptions extends PresetParameters {
  typical_p?: number;
  mirostat?: number;
  mirostat_tau?: number;
  mirostat_eta?: number;
  tfs_z?: number;
  repeat_last_n?: number;
  num_keep?: number;
  penalize_newline?: boolean;
  vocab_only?: boolean;
}

/** Hardware and loading options: the server sizes and places models for every client, so these change nothing. */
const HARDWARE_OPTIONS: Record<string, object> = {
  numa: { type: 'boolean' },
  num_batch: { type: 'integer', minimum: 0 },
  num_gpu: { type: 'integer', minimum: -1 },
  main_gpu: { type: 'integer', minimum: 0 },
  low_vram: { type: 'boolean' },
  f16_kv: { type: 'boolean' },
  logits_all: { type: 'boolean' },
  use_mmap: { type: 'boolean' },
  use_mlock: { type: 'boolean' },
  num_thread: { type: 'integer', minimum: 0 },
};

/** Ollama's defaults for the sampling options (Modelfile docs). */
export const OLLAMA_DEFAULTS = { temperature: 0.8, topK: 40, topP: 0.9, repeatPenalty: 1.1 } as const;

const num = (minimum: number, maximum: number) => ({ type: 'number', minimum, maximum });
const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum });

/**
 * Bounded like the OpenAI fields (openai-common/schema.ts): out-of-range values must never reach
 * llama.cpp. A created model's PARAMETERs (`forPreset`) leave the hardware options out: a preset
 * keeps only what it applies, so `PARAMETER num_gpu` is a 400 naming it rather than a stored no-op.
 */
export function optionsSchema(limits: LimitsConfig, forPreset = false): object {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      // -1: until a stop or the context is full; -2: fill the context (the same here).
      num_predict: { anyOf: [int(1, limits.maxTokens), { type: 'integer', enum: [-1, -2] }] },
      temperature: num(0, 2),
      top_k: int(0, 1000),
      top_p: num(0, 1),
      min_p: num(0, 1),
      seed: int(-1, 4294967295),
      stop: { type: 'array', maxItems: limits.maxStop, items: { type: 'string', minLength: 1, maxLength: 256 } },
      repeat_penalty: num(0, 2),
      presence_penalty: num(-2, 2),
      frequency_penalty: num(-2, 2),
      num_ctx: int(1, 10_000_000),
      typical_p: num(0, 1),
      mirostat: int(0, 2),
      mirostat_tau: num(0, 100),
      mirostat_eta: num(0, 100),
      tfs_z: num(0, 100),
      repeat_last_n: int(-1, 10_000_000),
      num_keep: int(-1, 10_000_000),
      penalize_newline: { type: 'boolean' },
      vocab_only: { type: 'boolean' },
      ...(forPreset ? {} : HARDWARE_OPTIONS),
    },
  };
}

/** Samplers this server does not run: refused unless set to the value that switches them off. */
function refuseUnsupported(o: OllamaOptions): void {
  const off: [keyof OllamaOptions, number][] = [
    ['typical_p', 1],
    ['mirostat', 0],
    ['tfs_z', 1],
  ];
  for (const [key, value] of off) {
    if (o[key] !== undefined && o[key] !== value) {
      throw new InferFluxError('invalid_request', `options.${key} is not supported by this server (only ${value}, which disables it).`, {
        param: `options.${key}`,
      });
    }
  }
  if (o.vocab_only === true) {
    throw new InferFluxError('invalid_request', 'options.vocab_only is not supported: models here are loaded whole, once, for every client.', { param: 'options.vocab_only' });
  }
  if (o.repeat_last_n !== undefined && o.repeat_last_n !== 0 && o.repeat_last_n !== PENALTY_WINDOW) {
    throw new InferFluxError(
      'invalid_request',
      `options.repeat_last_n ${o.repeat_last_n} is not supported: repetition penalties here look at the last ${PENALTY_WINDOW} tokens; send ${PENALTY_WINDOW} (Ollama's default) or 0 (no penalties).`,
      { param: 'options.repeat_last_n' },
    );
  }
}

/**
 * `num_ctx` larger than the context the server runs the model with would mean silently dropping
 * tokens, so it is refused; a smaller or equal one is honoured by the larger context (nothing is
 * ever cut: a prompt plus `num_predict` that does not fit is a 400 either way).
 */
export function checkNumCtx(o: OllamaOptions | undefined, contextSize: number): void {
  if (o?.num_ctx === undefined || o.num_ctx <= contextSize) return;
  throw new InferFluxError(
    'invalid_request',
    `options.num_ctx ${o.num_ctx} is larger than this server's context of ${contextSize} tokens per sequence (runtime.context_size); send num_ctx <= ${contextSize}.`,
    { param: 'options.num_ctx' },
  );
}

export function toSampling(o: OllamaOptions | undefined): SamplingSettings {
  const opts = o ?? {};
  refuseUnsupported(opts);
  // A window of 0 tokens: Ollama's way of switching the repetition penalties off.
  const penalties = opts.repeat_last_n !== 0;
  return samplingWith({
    maxTokens: opts.num_predict === undefined || opts.num_predict < 0 ? null : opts.num_predict,
    temperature: opts.temperature ?? OLLAMA_DEFAULTS.temperature,
    topK: opts.top_k ?? OLLAMA_DEFAULTS.topK,
    topP: opts.top_p ?? OLLAMA_DEFAULTS.topP,
    minP: opts.min_p,
    seed: opts.seed === undefined || opts.seed === -1 ? undefined : opts.seed,
    stop: opts.stop,
    repeatPenalty: penalties ? (opts.repeat_penalty ?? OLLAMA_DEFAULTS.repeatPenalty) : 1,
    presencePenalty: penalties ? opts.presence_penalty : 0,
    frequencyPenalty: penalties ? opts.frequency_penalty : 0,
  });
}
