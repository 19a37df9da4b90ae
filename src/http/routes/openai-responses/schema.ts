/**
 * Request schema for OpenAI's `POST /v1/responses`, stateless: `input` as a string or message
 * items, `instructions`, `max_output_tokens`, `temperature`, `top_p`, `stream`. Item and content
 * types are left open in the schema; the handler refuses what it cannot honour by name.
 */
import type { LimitsConfig } from '../../../config/types.js';

export interface InputContent {
  type: string;
  text?: string;
}

export interface InputItem {
  type?: string;
  role?: 'user' | 'assistant' | 'system' | 'developer';
  content?: string | InputContent[];
}

export interface ResponsesRequest {
  model?: string;
  input: string | InputItem[];
  instructions?: string | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  stream?: boolean | null;
  store?: boolean | null;
  previous_response_id?: string | null;
  conversation?: unknown;
  tools?: unknown[] | null;
  tool_choice?: unknown;
  background?: boolean | null;
  text?: { format?: { type?: string } } | null;
  reasoning?: { effort?: string | null } | null;
  prompt?: unknown;
  metadata?: Record<string, string> | null;
  user?: string;
  priority?: number;
}

const MAX_TEXT = 1_048_576;
const nullable = (s: object) => ({ anyOf: [s, { type: 'null' }] });

export function responsesSchema(limits: LimitsConfig): object {
  const content = {
    anyOf: [
      { type: 'string', maxLength: MAX_TEXT },
      {
        type: 'array',
        maxItems: 256,
        items: { type: 'object', required: ['type'], properties: { type: { type: 'string', maxLength: 64 }, text: { type: 'string', maxLength: MAX_TEXT } } },
      },
    ],
  };
  return {
    type: 'object',
    required: ['input'],
    properties: {
      model: { type: 'string', minLength: 1, maxLength: 256 },
      input: {
        anyOf: [
          { type: 'string', maxLength: MAX_TEXT },
          {
            type: 'array',
            minItems: 1,
            maxItems: 1024,
            items: {
              type: 'object',
              properties: { type: { type: 'string', maxLength: 64 }, role: { enum: ['user', 'assistant', 'system', 'developer'] }, content },
            },
          },
        ],
      },
      instructions: nullable({ type: 'string', maxLength: MAX_TEXT }),
      max_output_tokens: nullable({ type: 'integer', minimum: 1, maximum: limits.maxTokens }),
      temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
      top_p: nullable({ type: 'number', minimum: 0, maximum: 1 }),
      stream: nullable({ type: 'boolean' }),
      store: nullable({ type: 'boolean' }),
      previous_response_id: nullable({ type: 'string' }),
      tools: nullable({ type: 'array' }),
      background: nullable({ type: 'boolean' }),
      text: nullable({ type: 'object', properties: { format: { type: 'object', properties: { type: { type: 'string' } } } } }),
      reasoning: nullable({ type: 'object', properties: { effort: nullable({ type: 'string' }) } }),
      metadata: nullable({ type: 'object', maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } }),
      user: { type: 'string', maxLength: 256 },
      priority: { type: 'integer', minimum: -1000, maximum: 1000 },
    },
  };
}
