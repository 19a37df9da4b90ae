/**
 * Request schemas for Ollama's `POST /api/embed` (`input`: a string or an array of strings) and the
 * legacy `POST /api/embeddings` (`prompt`: one string), as in its docs/api.md.
 */
import type { LimitsConfig } from '../../../config/types.js';
import { optionsSchema, type OllamaOptions } from '../ollama-common/options.js';

export interface OllamaEmbedRequest {
  model: string;
  input?: string | string[];
  truncate?: boolean;
  dimensions?: number;
  options?: OllamaOptions;
  keep_alive?: string | number;
}

export interface OllamaEmbeddingsRequest {
  model: string;
  prompt?: string;
  options?: OllamaOptions;
  keep_alive?: string | number;
}

const MAX_TEXT = 1_048_576;
const text = { type: 'string', maxLength: MAX_TEXT };

function common(limits: LimitsConfig): Record<string, object> {
  return {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    options: optionsSchema(limits),
    // A duration string ("5m") or seconds: met by models staying loaded; 0 (unload) is refused (keep-alive.ts).
    keep_alive: { anyOf: [{ type: 'string', maxLength: 64 }, { type: 'number' }] },
  };
}

export function embedSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
    required: ['model'],
    additionalProperties: false,
    properties: {
      ...common(limits),
      input: { anyOf: [text, { type: 'array', maxItems: 65_536, items: text }] },
      truncate: { type: 'boolean' },
      // Accepted by the schema so the handler can say why it is refused.
      dimensions: { type: 'integer', minimum: 1, maximum: 1_048_576 },
    },
  };
}

export function embeddingsSchema(limits: LimitsConfig): object {
  return { type: 'object', required: ['model'], additionalProperties: false, properties: { ...common(limits), prompt: text } };
}
