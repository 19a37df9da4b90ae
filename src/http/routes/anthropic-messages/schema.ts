/**
 * Request schemas for Anthropic's `POST /v1/messages` and `POST /v1/messages/count_tokens`.
 * Content blocks are accepted by the schema with any `type`; the handler maps text, `tool_use`
 * and `tool_result` blocks and refuses the rest by name (images, documents...), so the client is
 * told which field this server cannot honour rather than getting a schema error. Tools are
 * checked the same way: a server tool (`web_search_...`) is refused by its type.
 */
import type { LimitsConfig } from '../../../config/types.js';

export interface ContentBlock {
  type: string;
  text?: string;
  /** `tool_use`: the call's id, the function and its input. */
  id?: string;
  name?: string;
  input?: Record<string, unknown>;
  /** `tool_result`: the call it answers, its output (text or text blocks), whether it failed. */
  tool_use_id?: string;
  content?: string | ContentBlock[];
  is_error?: boolean;
}

/** A client tool (`type` absent or `custom`); any other type is a server tool, refused by name. */
export interface AnthropicTool {
  type?: string;
  name: string;
  description?: string;
  input_schema?: unknown;
}

export interface AnthropicToolChoice {
  type: 'auto' | 'any' | 'tool' | 'none';
  name?: string;
  disable_parallel_tool_use?: boolean;
}

export interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: string | ContentBlock[];
}

export interface CountTokensRequest {
  model: string;
  messages: AnthropicMessage[];
  system?: string | ContentBlock[];
  tools?: AnthropicTool[];
  tool_choice?: AnthropicToolChoice;
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
  service_tier?: 'auto' | 'standard_only';
  /** InferFlux extension: a loaded LoRA adapter of the model. */
  adapter?: string;
}

const MAX_TEXT = 1_048_576;
const textBlock = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string', maxLength: 64 }, text: { type: 'string', maxLength: MAX_TEXT } },
};
const block = {
  type: 'object',
  required: ['type'],
  properties: {
    ...textBlock.properties,
    id: { type: 'string', minLength: 1, maxLength: 128 },
    name: { type: 'string', minLength: 1, maxLength: 128 },
    input: { type: 'object' },
    tool_use_id: { type: 'string', minLength: 1, maxLength: 128 },
    content: { anyOf: [{ type: 'string', maxLength: MAX_TEXT }, { type: 'array', maxItems: 256, items: textBlock }] },
    is_error: { type: 'boolean' },
  },
};
const content = { anyOf: [{ type: 'string', maxLength: MAX_TEXT }, { type: 'array', maxItems: 256, items: block }] };

const tools = {
  type: 'array',
  maxItems: 128,
  items: {
    type: 'object',
    required: ['name'],
    properties: {
      type: { type: 'string', maxLength: 64 },
      name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
      description: { type: 'string', maxLength: 8192 },
      // Any JSON value: the schema compiler says what it cannot take, naming the tool.
      input_schema: {},
    },
  },
};

const toolChoice = {
  type: 'object',
  required: ['type'],
  properties: {
    type: { enum: ['auto', 'any', 'tool', 'none'] },
    name: { type: 'string', maxLength: 64 },
    disable_parallel_tool_use: { type: 'boolean' },
  },
};

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
    tools,
    tool_choice: toolChoice,
    thinking: { type: 'object', properties: { type: { type: 'string' }, budget_tokens: { type: 'integer' } } },
  };
}

export function countTokensSchema(): object {
  return { type: 'object', required: ['model', 'messages'], additionalProperties: false, properties: countProperties() };
}

export function messagesSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
    required: ['model', 'max_tokens', 'messages'],
    // Anything else (container, mcp_servers, context_management...) is a 400 naming it.
    additionalProperties: false,
    properties: {
      ...countProperties(),
      max_tokens: { type: 'integer', minimum: 1, maximum: limits.maxTokens },
      adapter: { type: 'string', minLength: 1, maxLength: 64 },
      stop_sequences: { type: 'array', maxItems: limits.maxStop, items: { type: 'string', minLength: 1, maxLength: 256 } },
      // Anthropic's range is 0..1.
      temperature: { type: 'number', minimum: 0, maximum: 1 },
      top_p: { type: 'number', minimum: 0, maximum: 1 },
      top_k: { type: 'integer', minimum: 0, maximum: 1000 },
      metadata: { type: 'object', properties: { user_id: { anyOf: [{ type: 'string', maxLength: 256 }, { type: 'null' }] } } },
      stream: { type: 'boolean' },
      // Which capacity pool serves the request at Anthropic: no pools here, so nothing about the answer changes.
      service_tier: { enum: ['auto', 'standard_only'] },
    },
  };
}
