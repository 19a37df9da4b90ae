/**
 * Request schema for `POST /v1/chat/completions`: OpenAI's fields plus the llama.cpp/vLLM sampling
 * extensions, every one bounded (see openai-common/schema.ts).
 */
import type { LimitsConfig } from '../../../config/types.js';
import type { ChatMessage } from '../../../generation/contract.js';
import { InferFluxError } from '../../../errors.js';
import { MAX_TOP_LOGPROBS, samplingProperties, type SamplingBody } from '../openai-common/schema.js';

export type ContentPart = { type: 'text'; text: string } | { type: 'image_url' | 'input_audio' | 'file' };

/** OpenAI content parts that carry media: image, audio, file. No served model takes them (README). */
const MEDIA_PARTS = ['image_url', 'input_audio', 'file'];

export interface ChatRequestMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string | ContentPart[] | null;
  name?: string;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: unknown; strict?: boolean | null };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export interface ChatRequest extends SamplingBody {
  messages: ChatRequestMessage[];
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  tools?: ChatTool[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
}

/** Chat's `logprobs` (on/off) and `top_logprobs` (alternatives) as one count, or null for none. */
export function chatLogprobCount(body: ChatRequest): number | null {
  if (body.logprobs === true) return body.top_logprobs ?? 0;
  if (body.top_logprobs !== undefined && body.top_logprobs !== null) {
    throw new InferFluxError('invalid_request', "'top_logprobs' needs 'logprobs': true.", { param: 'top_logprobs' });
  }
  return null;
}

/** Longest single message text; the body limit bounds the total anyway. */
const MAX_TEXT = 1_048_576;

/** The `messages` array of a chat request; `/v1/admin/cache` warms with the same shape. */
export function chatMessagesSchema(): object {
  const text = { type: 'string', maxLength: MAX_TEXT };
  return {
    type: 'array',
    minItems: 1,
    maxItems: 1024,
    items: {
      type: 'object',
      required: ['role', 'content'],
      additionalProperties: false,
      properties: {
        role: { enum: ['system', 'user', 'assistant', 'tool', 'developer'] },
        content: {
          anyOf: [
            text,
            {
              type: 'array',
              maxItems: 256,
              items: {
                anyOf: [
                  { type: 'object', required: ['type', 'text'], additionalProperties: false, properties: { type: { const: 'text' }, text } },
                  // Parts of another modality parse, and are refused as a capability (422) the
                  // served model lacks, not as a malformed request.
                  { type: 'object', required: ['type'], properties: { type: { enum: MEDIA_PARTS } } },
                ],
              },
            },
            // Assistant turns that only carried tool calls have null content.
            { type: 'null' },
          ],
        },
        name: { type: 'string', maxLength: 256 },
        tool_calls: {
          type: 'array',
          maxItems: 64,
          items: {
            type: 'object',
            required: ['id', 'type', 'function'],
            additionalProperties: false,
            properties: {
              id: { type: 'string', maxLength: 128 },
              type: { const: 'function' },
              function: {
                type: 'object',
                required: ['name', 'arguments'],
                additionalProperties: false,
                properties: { name: { type: 'string', maxLength: 64 }, arguments: { type: 'string', maxLength: MAX_TEXT } },
              },
            },
          },
        },
        tool_call_id: { type: 'string', maxLength: 128 },
      },
    },
  };
}

/** `tools`, `tool_choice`, `parallel_tool_calls` (OpenAI's shapes; only function tools exist). */
export const toolProperties: Record<string, object> = {
  tools: {
    type: 'array',
    maxItems: 128,
    items: {
      type: 'object',
      required: ['type', 'function'],
      additionalProperties: false,
      properties: {
        type: { const: 'function' },
        function: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
            description: { type: 'string', maxLength: 8192 },
            // Any JSON value: the schema compiler says what it cannot take, naming the tool.
            parameters: {},
            strict: { type: ['boolean', 'null'] },
          },
        },
      },
    },
  },
  tool_choice: {
    anyOf: [
      { enum: ['none', 'auto', 'required'] },
      {
        type: 'object',
        required: ['type', 'function'],
        additionalProperties: false,
        properties: { type: { const: 'function' }, function: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 64 } } } },
      },
    ],
  },
  parallel_tool_calls: { type: 'boolean' },
};

export function chatSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
    required: ['messages'],
    additionalProperties: false,
    properties: {
      ...samplingProperties(limits),
      messages: chatMessagesSchema(),
      logprobs: { type: ['boolean', 'null'] },
      top_logprobs: { anyOf: [{ type: 'integer', minimum: 0, maximum: MAX_TOP_LOGPROBS }, { type: 'null' }] },
      ...toolProperties,
    },
  };
}

/**
 * A media part (image, audio, file), if any message has one: the served models take text only
 * (node-llama-cpp 3.22 has no multimodal support), so the route answers 422
 * `capability_not_supported` naming it.
 */
export function firstMediaPart(messages: ChatRequestMessage[]): { param: string; type: string } | null {
  for (let i = 0; i < messages.length; i++) {
    const c = messages[i]!.content;
    if (!Array.isArray(c)) continue;
    for (let j = 0; j < c.length; j++) if (c[j]!.type !== 'text') return { param: `messages[${i}].content[${j}]`, type: c[j]!.type };
  }
  return null;
}

/** Array content parts are joined into one text, as the contract asks (media parts are refused before this). */
export function toChatMessage(m: ChatRequestMessage): ChatMessage {
  const content =
    m.content === null ? '' : typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
  const out: ChatMessage = { role: m.role, content };
  if (m.name !== undefined) out.name = m.name;
  if (m.tool_calls) out.toolCalls = m.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
  if (m.tool_call_id !== undefined) out.toolCallId = m.tool_call_id;
  return out;
}
