/**
 * Request schemas for llama.cpp server's tokenizer helpers: `/tokenize`, `/detokenize`,
 * `/apply-template`. `model` is an InferFlux addition (llama.cpp serves one model); absent, the
 * default model answers.
 */
import { chatMessagesSchema, type ChatRequestMessage } from '../openai-chat/schema.js';

export interface TokenizeRequest {
  model?: string;
  content: string;
  add_special?: boolean;
  parse_special?: boolean;
  with_pieces?: boolean;
}

export interface DetokenizeRequest {
  model?: string;
  tokens: number[];
}

export interface ApplyTemplateRequest {
  model?: string;
  messages: ChatRequestMessage[];
}

const model = { type: 'string', minLength: 1, maxLength: 256 };

export const tokenizeSchema = {
  type: 'object',
  required: ['content'],
  additionalProperties: false,
  properties: {
    model,
    content: { type: 'string', maxLength: 1_048_576 },
    add_special: { type: 'boolean' },
    parse_special: { type: 'boolean' },
    with_pieces: { type: 'boolean' },
  },
};

export const detokenizeSchema = {
  type: 'object',
  required: ['tokens'],
  additionalProperties: false,
  properties: { model, tokens: { type: 'array', maxItems: 1_000_000, items: { type: 'integer' } } },
};

export function applyTemplateSchema(): object {
  return { type: 'object', required: ['messages'], additionalProperties: false, properties: { model, messages: chatMessagesSchema() } };
}
