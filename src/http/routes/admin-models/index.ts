/**
 * `GET /v1/admin/models` (list with state, hash, capabilities, memory), `POST /v1/admin/models`
 * (load `{id, path, default?}` or a pulled model `{model, id?, default?}`), `DELETE /v1/admin/models/{id}` (drain, then unload) and
 * `POST /v1/admin/models/{id}/default`. Scope `admin` (src/policy/rbac.ts).
 */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { listModels, loadModel, setDefaultModel, unloadModel } from './handler.js';
import { modelLoadSchema, type ModelLoad } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  const control = deps.gateway.modelControl;
  if (!control) return;
  const load = compileRequestSchema<ModelLoad>('POST /v1/admin/models', modelLoadSchema);
  app.get('/v1/admin/models', listModels(deps));
  app.post('/v1/admin/models', loadModel(deps, control, load));
  app.add('delete', '/v1/admin/models/:id', unloadModel(deps, control));
  app.post('/v1/admin/models/:id/default', setDefaultModel(deps, control));
}
