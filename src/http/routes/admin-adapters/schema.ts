import type { AdapterInfo } from '../../../generation/contract.js';

/** `POST /v1/admin/adapters`: load a LoRA adapter GGUF for a base model, at a scale. */
export interface AdapterLoad {
  model: string;
  id: string;
  path: string;
  scale?: number;
}

/** Scale bounds are checked by the registry (400 `invalid_request` naming `scale`), not here, so the message says the range. */
export const adapterLoadSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['model', 'id', 'path'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 128 },
    id: { type: 'string', minLength: 1, maxLength: 64 },
    path: { type: 'string', minLength: 1, maxLength: 4096 },
    scale: { type: 'number' },
  },
} as const;

/** One adapter as the admin API shows it. */
export function adminAdapterView(a: AdapterInfo) {
  return {
    id: a.id,
    object: 'adapter',
    model: a.model,
    path: a.path,
    scale: a.scale,
    sha256: a.sha256,
    rank: a.rank,
    alpha: a.alpha,
    target_tensors: a.targets,
    state: a.state,
    inflight: a.inflight,
    loaded_at: a.loadedAt,
  };
}
