/**
 * Shared shapes of the policy layer (src/policy): who is calling, what they may do, and the
 * mutable policy the admin API edits and the policy store persists. Everything here runs on the
 * main thread, on the request path, before any work reaches an actor.
 */

export const SCOPES = ['admin', 'read', 'generate', 'adapter-manager'] as const;
export type Scope = (typeof SCOPES)[number];

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

/** An API key as stored: only its SHA-256 hash, never the key. */
export interface ApiKeyRecord {
  /** Hex SHA-256 of the key. */
  hash: string;
  /** Short label shown in listings (`key:<first 12 hex>` by default). */
  id: string;
  /** Free text an admin gave at creation (never the key). */
  label?: string;
  scopes: Scope[];
  tenant: string;
  priority?: number;
  createdAt: string;
  /** Where it came from: config/env keys are read-only for the admin API. */
  origin: 'config' | 'env' | 'store';
}

export interface RateLimitPolicy {
  /** Requests per minute per key; 0 = unlimited. */
  requestsPerMinute: number;
  /** Prompt + completion tokens per minute per key; 0 = unlimited. */
  tokensPerMinute: number;
  /** Same limits per tenant (all its keys together); 0 = unlimited. */
  tenantRequestsPerMinute: number;
  tenantTokensPerMinute: number;
}

export type PiiKind = 'email' | 'phone' | 'credit_card' | 'iban' | 'secret';

export interface GuardrailPolicy {
  /** Case-insensitive terms; a prompt or output containing one is denied. */
  blocklist: string[];
  /**
   * What to do when a PII detector fires. `output` (absent = true): also filter generated text as
   * it streams; false scrubs prompts only (streams are then not held back for possible PII).
   */
  pii: { action: 'off' | 'redact' | 'block'; kinds: PiiKind[]; output?: boolean };
  /** External policy engine: `http(s)://...` (OPA-style) or `file://...` JSON; '' = none. */
  opaEndpoint: string;
  opaTimeoutMs: number;
  /** When the external engine fails or times out: allow ('open') or deny ('closed'). */
  opaFailMode: 'open' | 'closed';
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
