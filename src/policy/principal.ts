/**
 * Principals: who a request runs as. Ids are stable and never secret (`key:<12 hex of the key's
 * SHA-256>`, `oidc:<sub>`), so they can appear in audit lines, metrics and rate-limit buckets.
 */
import { SCOPES, type ApiKeyRecord, type Principal, type Scope } from './types.js';

export { keyIdFromHash } from '../config/api-key-spec.js';

export function principalFromKey(rec: ApiKeyRecord): Principal {
  return {
    id: rec.id,
    tenant: rec.tenant,
    scopes: new Set(rec.scopes),
    source: 'api_key',
    priority: rec.priority ?? 0,
  };
}

/**
 * The caller when authentication is switched off: every scope, tenant `default`. Only used when
 * the operator turned auth off (start-up warns loudly) or on public routes (where no scope is read).
 */
export const ANONYMOUS: Principal = Object.freeze({
  id: 'anonymous',
  tenant: 'default',
  scopes: new Set<Scope>(SCOPES),
  source: 'anonymous',
  priority: 0,
});

/** The caller on a public route when auth is on: nobody in particular, no scopes. */
export const PUBLIC: Principal = Object.freeze({
  id: 'anonymous',
  tenant: 'default',
  scopes: new Set<Scope>(),
  source: 'anonymous',
  priority: 0,
});
