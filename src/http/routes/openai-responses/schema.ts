/**
 * Request schema for OpenAI's `POST /v1/responses`, stateless: `input` as a string or items
 * (messages, `function_call`, `function_call_output`), `instructions`, `max_output_tokens`,
 * `temperature`, `top_p`, `stream`, function `tools`, `tool_choice`, `parallel_tool_calls`,
 * `text.format` (structured output). Item, content and tool types are left open in the schema; the
 * handler refuses what it cannot honour by name. A top-level field OpenAI's API has but this schema
 * does not name is a 400 naming it (`additionalProperties`), never dropped.
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

/** `text.format`: free text, any JSON object, or JSON following a schema (grammar-constrained). */
export type ResponsesTextFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema?: unknown; description?: string; strict?: boolean | null };

/** OpenAI's `include` values; only the logprobs one would add anything here (see the handler). */
export const INCLUDABLE = [
  'message.output_text.logprobs',
  'reasoning.encrypted_content',
  'file_search_call.results',
  'web_search_call.results',
  'web_search_call.action.sources',
  'code_interpreter_call.outputs',
  'computer_call_output.output.image_url',
  'message.input_image.image_url',
] as const;

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
  text?: { format?: ResponsesTextFormat; verbosity?: 'low' | 'medium' | 'high' | null } | null;
  reasoning?: { effort?: string | null; summary?: string | null; generate_summary?: string | null } | null;
  include?: (typeof INCLUDABLE)[number][] | null;
  truncation?: 'auto' | 'disabled' | null;
  top_logprobs?: number | null;
  max_tool_calls?: number | null;
  service_tier?: string | null;
  safety_identifier?: string;
  prompt_cache_key?: string;
  /** WebSocket mode only: `false` is a warm-up turn (prefill, no answer). */
  generate?: boolean;
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
    additionalProperties: false,
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
      // Named so the handler can say why they are refused (server-side state).
      conversation: {},
      prompt: {},
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
      text: nullable({
        type: 'object',
        additionalProperties: false,
        properties: {
          format: {
            anyOf: [
              { type: 'object', required: ['type'], additionalProperties: false, properties: { type: { enum: ['text', 'json_object'] } } },
              {
                type: 'object',
                required: ['type', 'name'],
                additionalProperties: false,
                properties: {
                  type: { const: 'json_schema' },
                  name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
                  description: { type: 'string', maxLength: 4096 },
                  // Any JSON value here: the compiler names what it does not support.
                  schema: {},
                  strict: nullable({ type: 'boolean' }),
                },
              },
            ],
          },
          verbosity: nullable({ enum: ['low', 'medium', 'high'] }),
        },
      }),
      reasoning: nullable({
        type: 'object',
        additionalProperties: false,
        properties: { effort: nullable({ type: 'string' }), summary: nullable({ type: 'string' }), generate_summary: nullable({ type: 'string' }) },
      }),
      include: nullable({ type: 'array', maxItems: 16, items: { enum: INCLUDABLE } }),
      // 'auto' lets OpenAI drop the oldest items of a conversation longer than the context; here
      // such a conversation is a 400 either way, and one that fits is never cut.
      truncation: nullable({ enum: ['auto', 'disabled'] }),
      top_logprobs: nullable({ type: 'integer', minimum: 0, maximum: 20 }),
      // Caps calls of OpenAI's built-in tools, which never run here: always met.
      max_tool_calls: nullable({ type: 'integer', minimum: 1 }),
      // Which capacity pool serves the request (latency and price at OpenAI): no pools here.
      service_tier: nullable({ enum: ['auto', 'default', 'flex', 'scale', 'priority'] }),
      // Who the end user is / a cache routing hint at OpenAI; like 'user', nothing about the answer changes.
      safety_identifier: { type: 'string', maxLength: 256 },
      prompt_cache_key: { type: 'string', maxLength: 256 },
      generate: { type: 'boolean' },
      metadata: nullable({ type: 'object', maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } }),
      user: { type: 'string', maxLength: 256 },
      priority: { type: 'integer', minimum: -1000, maximum: 1000 },
    },
  };
}
