/**
 * Policy values the configuration declares and the policy layer enforces: scopes, stored API key
 * records, rate limits and guardrail settings. They live in config (the ground floor) because the
 * typed config holds them; src/policy/types.ts re-exports them with the request-time shapes.
 */

export const SCOPES = ['admin', 'read', 'generate', 'adapter-manager'] as const;
export type Scope = (typeof SCOPES)[number];

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

