/**
 * Registers the policy admin API: guardrails, rate limits and API keys. Scope `admin` is enforced
 * by the RBAC table (src/policy/rbac.ts, `/v1/admin/*`) before any handler here runs. Without a
 * live policy (unit-test servers built without one) the routes are not registered.
 */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import {
  createApiKey,
  deleteApiKey,
  getGuardrails,
  getRateLimit,
  listApiKeys,
  putGuardrails,
  putRateLimit,
  type AdminDeps,
} from './handler.js';
import {
  apiKeyCreateSchema,
  guardrailsUpdateSchema,
  rateLimitUpdateSchema,
  type ApiKeyCreate,
  type GuardrailsUpdate,
  type RateLimitUpdate,
} from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  if (!deps.policy) return;
  const admin: AdminDeps = {
    policy: deps.policy,
    audit: deps.audit,
    maxBodyBytes: deps.config.server.maxBodyBytes,
    log: deps.log ?? (() => {}),
  };
  const guardrails = compileRequestSchema<GuardrailsUpdate>('PUT /v1/admin/guardrails', guardrailsUpdateSchema);
  const rateLimit = compileRequestSchema<RateLimitUpdate>('PUT /v1/admin/rate_limit', rateLimitUpdateSchema);
  const keyCreate = compileRequestSchema<ApiKeyCreate>('POST /v1/admin/api_keys', apiKeyCreateSchema);

  app.get('/v1/admin/guardrails', getGuardrails(admin));
  app.add('put', '/v1/admin/guardrails', putGuardrails(admin, guardrails));
  app.get('/v1/admin/rate_limit', getRateLimit(admin));
  app.add('put', '/v1/admin/rate_limit', putRateLimit(admin, rateLimit));
  app.get('/v1/admin/api_keys', listApiKeys(admin));
  app.post('/v1/admin/api_keys', createApiKey(admin, keyCreate));
  app.add('delete', '/v1/admin/api_keys/:id', deleteApiKey(admin));
}
