/**
 * Shared shapes of the policy layer (src/policy): who is calling, what they may do, and the
 * mutable policy the admin API edits and the policy store persists. Everything here runs on the
 * main thread, on the request path, before any work reaches an actor.
 */

import type { ApiKeyRecord, GuardrailPolicy, RateLimitPolicy, Scope } from '../config/policy-types.js';

export { SCOPES } from '../config/policy-types.js';
export type { ApiKeyRecord, GuardrailPolicy, PiiKind, RateLimitPolicy, Scope } from '../config/policy-types.js';

/** The authenticated caller of one request. */
export interface Principal {
  /** Stable, non-secret id: `key:<first 12 hex of sha256>` or `oidc:<sub>`; never the key itself. */
  id: string;
  tenant: string;
  scopes: ReadonlySet<Scope>;
  source: 'api_key' | 'oidc' | 'anonymous';
  /** Default request priority for this caller (fairness); 0 when unset. */
  priority: number;
}

/** Everything the admin API edits and the policy store persists, versioned as a whole. */
export interface PolicyDocument {
  version: number;
  updatedAt: string;
  apiKeys: ApiKeyRecord[];
  rateLimit: RateLimitPolicy;
  guardrails: GuardrailPolicy;
  /**
   * Sections an admin changed through the admin API (ISO time of the last change). A changed
   * section is taken from the store and wins over the config; an unchanged one follows the config
   * (see `initialPolicy` in src/policy/store).
   */
  overrides?: { rateLimit?: string; guardrails?: string };
}
