import type { ModelInfo } from '../../../generation/contract.js';

/**
 * `POST /v1/admin/models`: load a GGUF file (`path`) or a pulled model by its name (`model`, as
 * stored in `server.models_dir`) under an id (for `model`, defaults to the name). Which of
 * path/model is given, and the id when a path is, are checked by the registry with one message.
 */
export interface ModelLoad {
  id?: string;
  path?: string;
  model?: string;
  default?: boolean;
}

export const modelLoadSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128 },
    path: { type: 'string', minLength: 1, maxLength: 4096 },
    model: { type: 'string', minLength: 1, maxLength: 300 },
    default: { type: 'boolean' },
  },
} as const;

/** One model as the admin API shows it: everything the registry knows. */
export function adminModelView(m: ModelInfo) {
  return {
    id: m.id,
    object: 'model',
    path: m.path,
    pulled: m.pulled,
    sha256: m.sha256,
    state: m.state,
    ready: m.ready,
    default: m.isDefault,
    source: m.source,
    capabilities: m.capabilities,
    estimated_memory_bytes: m.memoryBytes,
    ...(m.error ? { error: m.error } : {}),
    metadata: modelMetadataView(m),
  };
}

/** GGUF metadata in the snake_case the HTTP API speaks (`/v1/models/{id}`, admin API). */
export function modelMetadataView(m: ModelInfo) {
  const md = m.metadata;
  return {
    architecture: md.architecture,
    parameter_count: md.parameterCount,
    quantization: md.quantization,
    context_length: md.contextLength,
    is_moe: md.isMoe,
    n_experts: md.nExperts,
    n_active_experts: md.nActiveExperts,
    chat_template: md.chatTemplate,
  };
}
