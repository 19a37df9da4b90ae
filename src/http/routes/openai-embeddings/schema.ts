/**
 * Request schema for `POST /v1/embeddings` (and LM Studio's `/api/v0/embeddings`): `input` is a
 * string, an array of strings, an array of token ids, or an array of token-id arrays, as in
 * OpenAI's API. Empty strings and empty arrays are refused, as OpenAI refuses them. The number of
 * inputs is bounded here loosely and by `runtime.embeddings.batch_max` in the facade (which names
 * the setting); token ids are checked against the model's vocabulary in the embedding worker.
 */

export interface EmbeddingsRequest {
  model?: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: 'float' | 'base64';
  dimensions?: number;
  user?: string;
}

const MAX_TEXT = 1_048_576;
const MAX_INPUTS = 65_536;
const tokenIds = { type: 'array', minItems: 1, maxItems: 1_048_576, items: { type: 'integer', minimum: 0, maximum: 2147483647 } };

export const embeddingsSchema = {
  type: 'object',
  required: ['input'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    input: {
      anyOf: [
        { type: 'string', minLength: 1, maxLength: MAX_TEXT },
        { type: 'array', minItems: 1, maxItems: MAX_INPUTS, items: { type: 'string', minLength: 1, maxLength: MAX_TEXT } },
        tokenIds,
        { type: 'array', minItems: 1, maxItems: MAX_INPUTS, items: tokenIds },
      ],
    },
    encoding_format: { enum: ['float', 'base64'] },
    // Accepted by the schema so the handler can say why it is refused.
    dimensions: { type: 'integer', minimum: 1, maximum: 1_048_576 },
    // OpenAI's end-user id for abuse monitoring: accepted; the audit line already names the caller.
    user: { type: 'string', maxLength: 256 },
  },
};
