/**
 * Request schemas for Anthropic's `POST /v1/messages` and `POST /v1/messages/count_tokens`.
 * Content blocks are accepted by the schema with any `type`; the handler turns text blocks into
 * text and refuses the rest by name (images, documents, tool use...), so the client is told which
 * field this server cannot honour yet rather than getting a schema error.
 */
import type { LimitsConfig } from '../../../config/types.js';

export interface ContentBlock {
  type: string;
  text?: string;
}

export interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: string | ContentBlock[];
}

export interface CountTokensRequest {
  model: string;
  messages: AnthropicMessage[];
  system?: string | ContentBlock[];
  tools?: unknown[];
  tool_choice?: unknown;
  thinking?: { type: string };
}

export interface MessagesRequest extends CountTokensRequest {
  max_tokens: number;
  stop_sequences?: string[];
  temperature?: number;
  top_p?: number;
  top_k?: number;
  metadata?: { user_id?: string | null };
  stream?: boolean;
}

const MAX_TEXT = 1_048_576;
const block = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string', maxLength: 64 }, text: { type: 'string', maxLength: MAX_TEXT } },
};
const content = { anyOf: [{ type: 'string', maxLength: MAX_TEXT }, { type: 'array', maxItems: 256, items: block }] };

function countProperties(): Record<string, object> {
  return {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: 1024,
      items: { type: 'object', required: ['role', 'content'], properties: { role: { enum: ['user', 'assistant'] }, content } },
    },
    system: content,
    tools: { type: 'array' },
    tool_choice: { type: 'object' },
    thinking: { type: 'object', properties: { type: { type: 'string' } } },
  };
}

export function countTokensSchema(): object {
  return { type: 'object', required: ['model', 'messages'], properties: countProperties() };
}

export function messagesSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
    required: ['model', 'max_tokens', 'messages'],
    properties: {
      ...countProperties(),
      max_tokens: { type: 'integer', minimum: 1, maximum: limits.maxTokens },
      stop_sequences: { type: 'array', maxItems: limits.maxStop, items: { type: 'string', minLength: 1, maxLength: 256 } },
      // Anthropic's range is 0..1.
      temperature: { type: 'number', minimum: 0, maximum: 1 },
      top_p: { type: 'number', minimum: 0, maximum: 1 },
      top_k: { type: 'integer', minimum: 0, maximum: 1000 },
      metadata: { type: 'object', properties: { user_id: { anyOf: [{ type: 'string', maxLength: 256 }, { type: 'null' }] } } },
      stream: { type: 'boolean' },
    },
  };
}
