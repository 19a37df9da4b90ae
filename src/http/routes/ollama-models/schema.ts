/** Request schema for Ollama's `POST /api/show` (`name` is the older spelling of `model`). */
export interface ShowRequest {
  model?: string;
  name?: string;
  verbose?: boolean;
}

export const showSchema = {
  type: 'object',
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
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    name: { type: 'string', minLength: 1, maxLength: 256 },
  },
};
