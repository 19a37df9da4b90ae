/**
 * Request schema for `POST /v1/completions`. `prompt` is a string, an array holding exactly one
 * string, or an array of token ids; batched prompts are refused rather than silently truncated.
 */
import type { LimitsConfig } from '../../../config/types.js';
import { MAX_TOP_LOGPROBS, samplingProperties, type SamplingBody } from '../openai-common/schema.js';

export interface CompletionRequest extends SamplingBody {
  prompt: string | (string | number)[];
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
      // One array schema for both forms; which form it is (and that a string array holds exactly
      // one prompt) is checked in the handler, where the message can say what is wrong.
      prompt: {
        anyOf: [
          { type: 'string', maxLength: 1_048_576 },
          {
            type: 'array',
            minItems: 1,
            maxItems: 131072,
            // Token ids are checked against the model's vocabulary by the gateway.
            items: { anyOf: [{ type: 'string', maxLength: 1_048_576 }, { type: 'integer', minimum: 0, maximum: 2147483647 }] },
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
