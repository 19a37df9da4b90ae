/**
 * Builds the live policy from what this process was configured with and what the store holds.
 *
 * The rule (also applied to every document adopted from another replica):
 * - API keys: config and env keys (origin `config`/`env`) always come from this process's own
 *   configuration; removing one there removes it. Keys created through the admin API (origin
 *   `store`) come from the store. A store key with the same hash as a config key is dropped: the
 *   configured one (with its scopes) wins.
 * - Rate limits and guardrails: a section an admin changed through the admin API
 *   (`overrides.<section>` set in the stored document) comes from the store, whole; a section
 *   nobody changed follows the config, so editing the config still works until an admin takes
 *   the section over.
 * - Version: the stored version (0 without a store), so replicas compare versions of the shared
 *   file and never go back in time.
 */
import type { ApiKeyRecord, GuardrailPolicy, PolicyDocument, RateLimitPolicy } from '../types.js';

/** What the configuration (YAML + env) says; the auth/guardrail wiring builds it from config. */
export interface PolicyDefaults {
  /** Hashed keys from `auth.api_keys`, `INFERFLUX_API_KEYS`, `INFERCTL_API_KEY` (origin config/env). */
  apiKeys: ApiKeyRecord[];
  rateLimit: RateLimitPolicy;
  guardrails: GuardrailPolicy;
}

export function initialPolicy(defaults: PolicyDefaults, stored: PolicyDocument | null, now: Date = new Date()): PolicyDocument {
  const configured = defaults.apiKeys.filter((k) => k.origin !== 'store');
  const configuredHashes = new Set(configured.map((k) => k.hash));
  const fromStore = (stored?.apiKeys ?? []).filter((k) => k.origin === 'store' && !configuredHashes.has(k.hash));
  const overrides = stored?.overrides ?? {};
  const doc: PolicyDocument = {
    version: stored?.version ?? 0,
    updatedAt: stored?.updatedAt ?? now.toISOString(),
    apiKeys: structuredClone([...configured, ...fromStore]),
    rateLimit: structuredClone(overrides.rateLimit && stored ? stored.rateLimit : defaults.rateLimit),
    guardrails: structuredClone(overrides.guardrails && stored ? stored.guardrails : defaults.guardrails),
  };
  if (overrides.rateLimit || overrides.guardrails) doc.overrides = { ...overrides };
  return doc;
}

/** Defaults when nothing is configured: no keys, no limits, no guardrails. */
export function emptyDefaults(): PolicyDefaults {
  return {
    apiKeys: [],
    rateLimit: { requestsPerMinute: 0, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0 },
    guardrails: { blocklist: [], pii: { action: 'off', kinds: [] }, opaEndpoint: '', opaTimeoutMs: 500, opaFailMode: 'closed' },
  };
}

/**
 * The defaults a loaded config carries: hashed keys from `auth.api_keys` / `INFERFLUX_API_KEYS` /
 * `INFERCTL_API_KEY` (parsed by the auth layer), the `rate_limit` and `guardrails` sections.
 * Sections a config does not have fall back to `emptyDefaults()`.
 */
export function policyDefaultsFrom(config: ConfigPolicySections): PolicyDefaults {
  const empty = emptyDefaults();
  return {
    apiKeys: config.auth?.apiKeys ?? empty.apiKeys,
    rateLimit: config.rateLimit ?? empty.rateLimit,
    guardrails: config.guardrails ?? empty.guardrails,
  };
}

/** The parts of `InferFluxConfig` the policy starts from (`source` is there so any config fits). */
export interface ConfigPolicySections {
  source: string;
  auth?: { apiKeys: ApiKeyRecord[] };
  rateLimit?: RateLimitPolicy;
  guardrails?: GuardrailPolicy;
}
