import { chatMessagesSchema, type ChatRequestMessage } from '../openai-chat/schema.js';

/** `POST /v1/admin/cache`: warm a prefix (run it once so its KV stays cached) or flush everything. */
export interface CacheAction {
  action: 'warm' | 'flush';
  model?: string;
  /** Text to warm (completion-style), or chat messages rendered through the model's template. */
  prompt?: string;
  messages?: ChatRequestMessage[];
}

export const cacheActionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['action'],
  properties: {
    action: { enum: ['warm', 'flush'] },
    model: { type: 'string', minLength: 1, maxLength: 256 },
    prompt: { type: 'string', minLength: 1, maxLength: 1_000_000 },
    messages: chatMessagesSchema(),
  },
} as const;
