/**
 * The model-dependent half of the sampling path: a request's `SamplingSettings` checked against
 * the model it runs on and made concrete for the engine (`EngineSampling`). Everything that could
 * reach llama.cpp out of range stops here with a 400: a prompt that leaves no room in the context,
 * token ids outside the vocabulary (either aborts the whole process inside llama.cpp).
 */
import { randomInt } from 'node:crypto';
import { InferFluxError } from '../errors.js';
import type { EngineSampling, SamplingSettings } from '../runtime/sampling.js';

/** What resolving needs to know about the model. */
export interface ModelLimits {
  /** Context length per sequence. */
  contextSize: number;
  vocabSize: number;
}

/** `maxTokensField`: the request's name for the token cap, for the error (see GenerateInput). */
export function resolveSampling(s: SamplingSettings, model: ModelLimits, promptTokens: number, maxTokensField = 'max_tokens'): EngineSampling {
  const ctx = model.contextSize;
  if (promptTokens === 0) throw new InferFluxError('invalid_request', 'The prompt is empty.', { param: 'prompt' });
  if (promptTokens >= ctx) {
    throw new InferFluxError(
      'context_length_exceeded',
      `The prompt is ${promptTokens} tokens; this model's context is ${ctx} tokens, which must also hold at least one generated token.`,
      { param: 'messages' },
    );
  }
  if (s.maxTokens !== null && promptTokens + s.maxTokens > ctx) {
    throw new InferFluxError(
      'context_length_exceeded',
      `The prompt (${promptTokens} tokens) plus ${maxTokensField} (${s.maxTokens}) exceeds this model's context of ${ctx} tokens.`,
      { param: maxTokensField },
    );
  }
  for (const [token] of s.logitBias) {
    if (!Number.isInteger(token) || token < 0 || token >= model.vocabSize) {
      throw new InferFluxError('invalid_request', `logit_bias names token ${token}, outside the vocabulary (0..${model.vocabSize - 1}).`, {
        param: 'logit_bias',
      });
    }
  }
  const maxTokens = s.maxTokens ?? ctx - promptTokens;
  return {
    ...s,
    maxTokens,
    seed: s.seed ?? randomInt(0, 2 ** 31),
    minTokens: Math.min(s.minTokens, maxTokens),
  };
}

/** Token ids a client sent as its prompt, checked against the vocabulary. */
export function checkPromptTokens(tokens: readonly number[], vocabSize: number, param = 'prompt'): void {
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw new InferFluxError('invalid_request', `Token id ${t} is outside the vocabulary (0..${vocabSize - 1}).`, { param });
    }
  }
}
