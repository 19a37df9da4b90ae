import type { ModelInfo } from '../../../generation/contract.js';

/** `POST /v1/admin/models`: load a GGUF file under an id. */
export interface ModelLoad {
  id: string;
  path: string;
  default?: boolean;
}

export const modelLoadSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'path'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128 },
    path: { type: 'string', minLength: 1, maxLength: 4096 },
    default: { type: 'boolean' },
  },
} as const;

/** One model as the admin API shows it: everything the registry knows. */
export function adminModelView(m: ModelInfo) {
  return {
    id: m.id,
    object: 'model',
    path: m.path,
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
