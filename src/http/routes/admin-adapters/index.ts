/**
 * `GET /v1/admin/adapters` (loaded LoRA adapters), `POST /v1/admin/adapters` (load
 * `{model, id, path, scale?}`) and `DELETE /v1/admin/adapters/{id}` (drain, then unload).
 * Scope `admin` or `adapter-manager` (src/policy/rbac.ts).
 */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { listAdapters, loadAdapter, unloadAdapter } from './handler.js';
import { adapterLoadSchema, type AdapterLoad } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  const control = deps.gateway.adapterControl;
  if (!control) return;
  const load = compileRequestSchema<AdapterLoad>('POST /v1/admin/adapters', adapterLoadSchema);
  app.get('/v1/admin/adapters', listAdapters(control));
  app.post('/v1/admin/adapters', loadAdapter(deps, control, load));
  app.add('delete', '/v1/admin/adapters/:id', unloadAdapter(deps, control));
}
