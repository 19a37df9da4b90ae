/**
 * Request schema for OpenAI's `POST /v1/responses`, stateless: `input` as a string or items
 * (messages, `function_call`, `function_call_output`), `instructions`, `max_output_tokens`,
 * `temperature`, `top_p`, `stream`, function `tools`, `tool_choice`, `parallel_tool_calls`. Item,
 * content and tool types are left open in the schema; the handler refuses what it cannot honour by name.
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
  /** `function_call`: the call's id, function and JSON arguments; `function_call_output`: the call it answers and its output. */
  call_id?: string;
  name?: string;
  arguments?: string;
  output?: string | InputContent[];
}

/** A function tool; any other `type` is a hosted tool (web_search, file_search...), refused by name. */
export interface ResponsesTool {
  type: string;
  name?: string;
  description?: string | null;
  parameters?: unknown;
  strict?: boolean | null;
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
  tools?: ResponsesTool[] | null;
  tool_choice?: 'none' | 'auto' | 'required' | { type: string; name?: string } | null;
  parallel_tool_calls?: boolean | null;
  background?: boolean | null;
  text?: { format?: { type?: string } } | null;
  reasoning?: { effort?: string | null } | null;
  prompt?: unknown;
  metadata?: Record<string, string> | null;
  user?: string;
  priority?: number;
  /** InferFlux extension: a loaded LoRA adapter of the model. */
  adapter?: string;
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
      adapter: { type: 'string', minLength: 1, maxLength: 64 },
      input: {
        anyOf: [
          { type: 'string', maxLength: MAX_TEXT },
          {
            type: 'array',
            minItems: 1,
            maxItems: 1024,
            items: {
              type: 'object',
              properties: {
                type: { type: 'string', maxLength: 64 },
                role: { enum: ['user', 'assistant', 'system', 'developer'] },
                content,
                id: { type: 'string', maxLength: 128 },
                status: { type: 'string', maxLength: 32 },
                call_id: { type: 'string', minLength: 1, maxLength: 128 },
                name: { type: 'string', minLength: 1, maxLength: 64 },
                arguments: { type: 'string', maxLength: MAX_TEXT },
                output: content,
              },
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
      tools: nullable({
        type: 'array',
        maxItems: 128,
        items: {
          type: 'object',
          required: ['type'],
          properties: {
            type: { type: 'string', maxLength: 64 },
            name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
            description: nullable({ type: 'string', maxLength: 8192 }),
            // Any JSON value: the schema compiler says what it cannot take, naming the tool.
            parameters: {},
            strict: nullable({ type: 'boolean' }),
          },
        },
      }),
      tool_choice: nullable({
        anyOf: [
          { enum: ['none', 'auto', 'required'] },
          { type: 'object', required: ['type'], properties: { type: { type: 'string', maxLength: 64 }, name: { type: 'string', maxLength: 64 } } },
        ],
      }),
      parallel_tool_calls: nullable({ type: 'boolean' }),
      background: nullable({ type: 'boolean' }),
      text: nullable({ type: 'object', properties: { format: { type: 'object', properties: { type: { type: 'string' } } } } }),
      reasoning: nullable({ type: 'object', properties: { effort: nullable({ type: 'string' }) } }),
      metadata: nullable({ type: 'object', maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } }),
      user: { type: 'string', maxLength: 256 },
      priority: { type: 'integer', minimum: -1000, maximum: 1000 },
    },
  };
}
