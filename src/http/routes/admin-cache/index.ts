/**
 * `GET /v1/admin/cache` (prefix cache status per engine worker) and `POST /v1/admin/cache`
 * (warm a prefix, flush). Scope `admin` through the RBAC table's `/v1/admin/*` row.
 */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { getCache, postCache } from './handler.js';
import { cacheActionSchema, type CacheAction } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  const cache = deps.gateway.cache;
  if (!cache) return;
  const validate = compileRequestSchema<CacheAction>('POST /v1/admin/cache', cacheActionSchema);
  app.get('/v1/admin/cache', getCache(deps, cache));
  app.post('/v1/admin/cache', postCache(deps, cache, validate));
}
