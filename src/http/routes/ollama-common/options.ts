/**
 * Ollama's request `options` (its Modelfile parameters) onto the one `SamplingSettings` shape.
 * Absent options take Ollama's documented defaults (temperature 0.8, top_k 40, top_p 0.9,
 * repeat_penalty 1.1, num_predict -1 = no cap), not OpenAI's: Ollama clients expect Ollama's
 * behaviour. Options that change sampling in ways llama.cpp here cannot (mirostat, typical_p,
 * tfs_z) are refused when set to anything but their "off" value; options about hardware and
 * loading (num_gpu, num_thread, use_mmap...) are accepted and ignored: the server decides those.
 * `num_ctx` is honoured or refused, never silently truncated (see `checkNumCtx`).
 */
import type { LimitsConfig } from '../../../config/types.js';
import { InferFluxError } from '../../../errors.js';
import { samplingWith, type SamplingSettings } from '../../../runtime/sampling.js';
import type { PresetParameters } from '../../../runtime/models/preset-store.js';

/** The options this server runs (a created model's PARAMETERs take the same), and the samplers it refuses unless off. */
export interface OllamaOptions extends PresetParameters {
  typical_p?: number;
  mirostat?: number;
  tfs_z?: number;
}

/** Ollama's defaults for the sampling options (Modelfile docs). */
export const OLLAMA_DEFAULTS = { temperature: 0.8, topK: 40, topP: 0.9, repeatPenalty: 1.1 } as const;

const num = (minimum: number, maximum: number) => ({ type: 'number', minimum, maximum });
const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum });

/** Bounded like the OpenAI fields (openai-common/schema.ts): out-of-range values must never reach llama.cpp. */
export function optionsSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
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
      tfs_z: num(0, 100),
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
  return samplingWith({
    maxTokens: opts.num_predict === undefined || opts.num_predict < 0 ? null : opts.num_predict,
    temperature: opts.temperature ?? OLLAMA_DEFAULTS.temperature,
    topK: opts.top_k ?? OLLAMA_DEFAULTS.topK,
    topP: opts.top_p ?? OLLAMA_DEFAULTS.topP,
    minP: opts.min_p,
    seed: opts.seed === undefined || opts.seed === -1 ? undefined : opts.seed,
    stop: opts.stop,
    repeatPenalty: opts.repeat_penalty ?? OLLAMA_DEFAULTS.repeatPenalty,
    presencePenalty: opts.presence_penalty,
    frequencyPenalty: opts.frequency_penalty,
  });
}
