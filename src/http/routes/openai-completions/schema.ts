/**
 * Request schema for `POST /v1/completions`. `prompt` is a string, an array of strings, an array of
 * token ids or an array of token-id arrays (several prompts run as one batch; see the handler).
 */
import type { LimitsConfig } from '../../../config/types.js';
import { MAX_TOP_LOGPROBS, samplingProperties, type SamplingBody } from '../openai-common/schema.js';

export interface CompletionRequest extends SamplingBody {
  prompt: string | (string | number | number[])[];
  echo?: boolean;
  logprobs?: number | null;
}

export function completionSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
    required: ['prompt'],
    additionalProperties: false,
    properties: {
      ...samplingProperties(limits),
      // One array schema for the three array forms; which form it is (never a mix) and how many
      // prompts it holds are checked in the handler, where the message can say what is wrong.
      prompt: {
        anyOf: [
          { type: 'string', maxLength: 1_048_576 },
          {
            type: 'array',
            minItems: 1,
            maxItems: 131072,
            // Token ids are checked against the model's vocabulary by the gateway.
            items: {
              anyOf: [
                { type: 'string', maxLength: 1_048_576 },
                { type: 'integer', minimum: 0, maximum: 2147483647 },
                { type: 'array', minItems: 1, maxItems: 131072, items: { type: 'integer', minimum: 0, maximum: 2147483647 } },
              ],
            },
          },
        ],
      },
      // Only the default (no echo) is served; echoing the prompt back is refused, not ignored.
      echo: { const: false },
      // Legacy completions: the number of alternatives (0 = the sampled token's only).
      logprobs: { anyOf: [{ type: 'integer', minimum: 0, maximum: MAX_TOP_LOGPROBS }, { type: 'null' }] },
    },
  };
}
