/**
 * Sampling fields shared by `/v1/chat/completions` and `/v1/completions`, and their mapping onto
 * the one `SamplingSettings` shape (runtime/sampling.ts). Every numeric and array field is bounded: unbounded `n`,
 * `max_tokens` and `stop` took vLLM down, and any NaN or out-of-range value reaching llama.cpp can
 * abort the whole process. Request bodies refuse fields they do not know (a 400 naming the field),
 * except the few OpenAI fields accepted and ignored on purpose (`IGNORED_OPENAI_FIELDS`, listed
 * in the README): a field we do not implement must never be a 200 that silently ignores it.
 */
import { samplingWith, type SamplingFields, type SamplingSettings } from '../../../runtime/sampling.js';
import { structuredProperties, type StructuredBody } from './structured.js';
import { InferFluxError } from '../../../errors.js';
import type { LimitsConfig } from '../../../config/types.js';

export interface SamplingBody extends StructuredBody {
  model?: string;
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  seed?: number;
  stop?: string | string[];
  presence_penalty?: number;
  frequency_penalty?: number;
  repeat_penalty?: number;
  logit_bias?: Record<string, number>;
  n?: number;
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  ignore_eos?: boolean;
  min_tokens?: number;
  /** InferFlux extension: scheduling priority, higher first. */
  priority?: number;
  /** InferFlux extension: a loaded LoRA adapter of the model. */
  adapter?: string;
  /** vLLM's extension: KV and cached responses are reused only between requests with the same salt. */
  cache_salt?: string;
  user?: string;
}

const num = (minimum: number, maximum: number) => ({ type: 'number', minimum, maximum });
const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum });

/** Property schemas for the shared fields, bounded by the configured limits. */
export function samplingProperties(limits: LimitsConfig): Record<string, object> {
  const stopString = { type: 'string', minLength: 1, maxLength: 256 };
  return {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    max_tokens: { anyOf: [int(1, limits.maxTokens), { type: 'null' }] },
    max_completion_tokens: { anyOf: [int(1, limits.maxTokens), { type: 'null' }] },
    temperature: num(0, 2),
    top_p: num(0, 1),
    // llama.cpp extension; 0 disables it.
    top_k: int(0, 1000),
    min_p: num(0, 1),
    // llama.cpp seeds are uint32; -1 is llama.cpp's "random".
    seed: int(-1, 4294967295),
    stop: { anyOf: [stopString, { type: 'array', maxItems: limits.maxStop, items: stopString }, { type: 'null' }] },
    presence_penalty: num(-2, 2),
    frequency_penalty: num(-2, 2),
    repeat_penalty: num(0, 2),
    logit_bias: {
      type: 'object',
      maxProperties: 1024,
      propertyNames: { pattern: '^(0|[1-9][0-9]{0,9})$' },
      additionalProperties: num(-100, 100),
    },
    n: int(1, limits.maxN),
    stream: { type: 'boolean' },
    stream_options: {
      anyOf: [{ type: 'object', properties: { include_usage: { type: 'boolean' } } }, { type: 'null' }],
    },
    ignore_eos: { type: 'boolean' },
    min_tokens: int(0, limits.maxTokens),
    priority: int(-1000, 1000),
    // InferFlux extension: a loaded LoRA adapter of the model (same as model "base:adapter").
    adapter: { type: 'string', minLength: 1, maxLength: 64 },
    // vLLM's extension: prefix reuse only between requests with the same salt.
    cache_salt: { type: 'string', minLength: 1, maxLength: 256 },
    ...structuredProperties,
    ...IGNORED_OPENAI_FIELDS,
  };
}

/**
 * OpenAI fields accepted and ignored on purpose: they only matter to OpenAI's own service (end-user
 * ids for abuse monitoring, storing completions for later retrieval, tags for its dashboard,
 * billing tiers), and change nothing about the answer. Keep the README's list in step.
 */
export const IGNORED_OPENAI_FIELDS: Record<string, object> = {
  user: { type: 'string', maxLength: 256 },
  store: { type: ['boolean', 'null'] },
  metadata: {
    anyOf: [{ type: 'object', maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } }, { type: 'null' }],
  },
  service_tier: { anyOf: [{ enum: ['auto', 'default', 'flex'] }, { type: 'null' }] },
};

/** Most alternatives a request may ask log probabilities for (OpenAI's bound for `top_logprobs`). */
export const MAX_TOP_LOGPROBS = 20;

/**
 * OpenAI's fields onto the settings; absent fields keep the defaults (OpenAI's semantics, see
 * `DEFAULT_SAMPLING`). `defaultMaxTokens` differs per route (see callers); seed -1 is llama.cpp's
 * "random". `under`: a model preset's parameters, under the request's fields and over the defaults.
 */
export function toSamplingParams(
  body: SamplingBody,
  defaultMaxTokens: number | undefined,
  extra: { logprobs?: number | null; grammar?: string | null } = {},
  under: SamplingFields = {},
): SamplingSettings {
  return samplingWith({
    logprobs: extra.logprobs ?? null,
    grammar: extra.grammar ?? null,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? under.maxTokens ?? defaultMaxTokens,
    temperature: body.temperature,
    topP: body.top_p,
    topK: body.top_k,
    minP: body.min_p,
    seed: body.seed === -1 ? undefined : body.seed,
    stop: body.stop === undefined || body.stop === null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop,
    presencePenalty: body.presence_penalty,
    frequencyPenalty: body.frequency_penalty,
    repeatPenalty: body.repeat_penalty,
    logitBias: body.logit_bias && Object.entries(body.logit_bias).map(([token, bias]) => [Number(token), bias]),
    ignoreEos: body.ignore_eos,
    minTokens: body.min_tokens,
  }, under);
}

/**
 * The request's priority: the body's `priority`, else the `X-InferFlux-Priority` header, else
 * undefined (the caller's key default applies). A malformed header is a 400, not silently 0.
 */
export function requestPriority(body: { priority?: number }, header: string): number | undefined {
  if (body.priority !== undefined) return body.priority;
  const h = header.trim();
  if (h === '') return undefined;
  if (!/^-?\d{1,4}$/.test(h) || Math.abs(Number(h)) > 1000) {
    throw new InferFluxError('invalid_request', 'X-InferFlux-Priority must be an integer from -1000 to 1000.', { param: 'priority' });
  }
  return Number(h);
}
