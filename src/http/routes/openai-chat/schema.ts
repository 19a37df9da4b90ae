/**
 * Request schema for `POST /v1/chat/completions`: OpenAI's fields plus the llama.cpp/vLLM sampling
 * extensions, every one bounded (see openai-common/schema.ts).
 */
import type { LimitsConfig } from '../../../config/types.js';
import type { ChatMessage } from '../../../generation/contract.js';
import { samplingProperties, type SamplingBody } from '../openai-common/schema.js';

export type ContentPart = { type: 'text'; text: string };

export interface ChatRequestMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string | ContentPart[] | null;
  name?: string;
}

export interface ChatRequest extends SamplingBody {
  messages: ChatRequestMessage[];
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
      properties: {
        role: { enum: ['system', 'user', 'assistant', 'tool', 'developer'] },
        content: {
          anyOf: [
            text,
            {
              type: 'array',
              maxItems: 256,
              items: {
                type: 'object',
                required: ['type', 'text'],
                properties: { type: { const: 'text' }, text },
              },
            },
            // Assistant turns that only carried tool calls have null content.
            { type: 'null' },
          ],
        },
        name: { type: 'string', maxLength: 256 },
      },
    },
  };
}

export function chatSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
    required: ['messages'],
    properties: {
      ...samplingProperties(limits),
      messages: chatMessagesSchema(),
    },
  };
}

/** Array content parts are joined into one text, as the contract asks (only text parts exist). */
export function toChatMessage(m: ChatRequestMessage): ChatMessage {
  const content = m.content === null ? '' : typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('');
  return m.name === undefined ? { role: m.role, content } : { role: m.role, content, name: m.name };
}
