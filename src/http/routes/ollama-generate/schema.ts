/**
 * Request schemas for Ollama's `POST /api/chat` and `POST /api/generate` (its docs/api.md). Fields
 * this server cannot honour are accepted by the schema and refused by the handler with a 400
 * naming them, so the client learns why instead of getting a different answer than it asked for;
 * a field Ollama does not document is refused by the schema itself (`additionalProperties`).
 */
import type { LimitsConfig } from '../../../config/types.js';
import { optionsSchema, type OllamaOptions } from '../ollama-common/options.js';

export interface OllamaChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  images?: string[] | null;
  tool_calls?: OllamaToolCall[] | null;
  tool_name?: string;
  thinking?: string;
}

/** A call as Ollama sends it: the arguments are an object, not JSON text. */
export interface OllamaToolCall {
  function: { name: string; arguments: Record<string, unknown> };
}

export interface OllamaTool {
  type: string;
  function: { name: string; description?: string; parameters?: unknown };
}

interface OllamaCommon {
  model: string;
  stream?: boolean;
  format?: unknown;
  options?: OllamaOptions;
  keep_alive?: string | number;
  think?: boolean | string;
  /** InferFlux extension: a loaded LoRA adapter of the model. */
  adapter?: string;
}

export interface OllamaChatRequest extends OllamaCommon {
  messages?: OllamaChatMessage[];
  tools?: OllamaTool[] | null;
}

export interface OllamaGenerateRequest extends OllamaCommon {
  prompt?: string;
  suffix?: string;
  system?: string;
  template?: string;
  raw?: boolean;
  images?: string[] | null;
  context?: number[] | null;
}

const MAX_TEXT = 1_048_576;
const text = { type: 'string', maxLength: MAX_TEXT };

function common(limits: LimitsConfig): Record<string, object> {
  return {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    stream: { type: 'boolean' },
    format: { anyOf: [{ type: 'string' }, { type: 'object' }, { type: 'null' }] },
    options: optionsSchema(limits),
    // A duration string ("5m") or seconds: met by models staying loaded; 0 (unload) is refused (keep-alive.ts).
    keep_alive: { anyOf: [{ type: 'string', maxLength: 64 }, { type: 'number' }] },
    think: { anyOf: [{ type: 'boolean' }, { type: 'string', maxLength: 16 }] },
    adapter: { type: 'string', minLength: 1, maxLength: 64 },
  };
}

export function chatSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
    required: ['model'],
    additionalProperties: false,
    properties: {
      ...common(limits),
      messages: {
        type: 'array',
        maxItems: 1024,
        items: {
          type: 'object',
          required: ['role'],
          properties: {
            role: { enum: ['system', 'user', 'assistant', 'tool'] },
            content: text,
            images: { anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'null' }] },
            tool_calls: {
              anyOf: [
                {
                  type: 'array',
                  maxItems: 64,
                  items: {
                    type: 'object',
                    required: ['function'],
                    properties: {
                      function: {
                        type: 'object',
                        required: ['name', 'arguments'],
                        properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, arguments: { type: 'object' } },
                      },
                    },
                  },
                },
                { type: 'null' },
              ],
            },
            tool_name: { type: 'string', maxLength: 256 },
            thinking: text,
          },
        },
      },
      tools: {
        anyOf: [
          {
            type: 'array',
            maxItems: 128,
            items: {
              type: 'object',
              required: ['type', 'function'],
              properties: {
                type: { type: 'string', maxLength: 64 },
                function: {
                  type: 'object',
                  required: ['name'],
                  properties: {
                    name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
                    description: { type: 'string', maxLength: 8192 },
                    // Any JSON value: the schema compiler says what it cannot take, naming the tool.
                    parameters: {},
                  },
                },
              },
            },
          },
          { type: 'null' },
        ],
      },
    },
  };
}

export function generateSchema(limits: LimitsConfig): object {
  return {
    type: 'object',
    required: ['model'],
    additionalProperties: false,
    properties: {
      ...common(limits),
      prompt: text,
      suffix: text,
      system: text,
      template: text,
      raw: { type: 'boolean' },
      images: { anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'null' }] },
      context: { anyOf: [{ type: 'array', items: { type: 'integer' } }, { type: 'null' }] },
    },
  };
}
