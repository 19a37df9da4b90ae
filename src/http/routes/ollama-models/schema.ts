/** Request schema for Ollama's `POST /api/show` (`name` is the older spelling of `model`). */
export interface ShowRequest {
  model?: string;
  name?: string;
  verbose?: boolean;
}

export const showSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    name: { type: 'string', minLength: 1, maxLength: 256 },
    verbose: { type: 'boolean' },
  },
};

/** `POST /api/pull`: `model` (or the older `name`) is what to pull; `insecure` is accepted and ignored (TLS is always checked). */
export interface PullRequestBody {
  model?: string;
  name?: string;
  insecure?: boolean;
  stream?: boolean;
}

export const pullSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 2048 },
    name: { type: 'string', minLength: 1, maxLength: 2048 },
    insecure: { type: 'boolean' },
    stream: { type: 'boolean' },
  },
};

export interface CopyRequest {
  source: string;
  destination: string;
}

export const copySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['source', 'destination'],
  properties: {
    source: { type: 'string', minLength: 1, maxLength: 256 },
    destination: { type: 'string', minLength: 1, maxLength: 256 },
  },
};

export interface DeleteRequest {
  model?: string;
  name?: string;
}

export const deleteSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    name: { type: 'string', minLength: 1, maxLength: 256 },
  },
};

/**
 * `POST /api/create`: a new model name over an existing one, with a Modelfile's SYSTEM,
 * PARAMETER (`parameters`), MESSAGE (`messages`) and LICENSE. `files`, `adapters`, `quantize`
 * and a non-empty `template` are in the schema so the handler can refuse them by name.
 */
export interface CreateRequest {
  model?: string;
  name?: string;
  from?: string;
  system?: string;
  parameters?: Record<string, unknown>;
  messages?: { role: 'system' | 'user' | 'assistant'; content: string }[];
  license?: string | string[];
  template?: string;
  files?: Record<string, string>;
  adapters?: Record<string, string>;
  quantize?: string;
  stream?: boolean;
}

const MAX_PRESET_TEXT = 65_536;

export function createSchema(parameters: object): object {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      model: { type: 'string', minLength: 1, maxLength: 256 },
      name: { type: 'string', minLength: 1, maxLength: 256 },
      from: { type: 'string', minLength: 1, maxLength: 256 },
      system: { type: 'string', maxLength: MAX_PRESET_TEXT },
      // Unknown PARAMETER names are refused by name, not dropped.
      parameters: { ...parameters, additionalProperties: false },
      messages: {
        type: 'array',
        maxItems: 256,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['role', 'content'],
          properties: { role: { enum: ['system', 'user', 'assistant'] }, content: { type: 'string', maxLength: MAX_PRESET_TEXT } },
        },
      },
      license: {
        anyOf: [
          { type: 'string', maxLength: MAX_PRESET_TEXT },
          { type: 'array', maxItems: 16, items: { type: 'string', maxLength: MAX_PRESET_TEXT } },
        ],
      },
      template: { type: 'string', maxLength: MAX_PRESET_TEXT },
      files: { type: 'object' },
      adapters: { type: 'object' },
      quantize: { type: 'string', maxLength: 64 },
      stream: { type: 'boolean' },
    },
  };
}
