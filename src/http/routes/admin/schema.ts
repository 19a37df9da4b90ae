/**
 * Request bodies of the admin API (snake_case, as on the wire) and the JSON views it answers with.
 * Every field is bounded; unknown fields are refused so a typo is a 400, not a silent no-op.
 */
import { MAX_KEY_LENGTH, MIN_KEY_LENGTH } from '../../../config/api-key-spec.js';
import { SCOPES, type ApiKeyRecord, type GuardrailPolicy, type PiiKind, type RateLimitPolicy, type Scope } from '../../../policy/types.js';
import { PII_KINDS } from '../../../policy/store/document-schema.js';

export interface GuardrailsUpdate {
  blocklist?: string[];
  pii?: { action?: 'off' | 'redact' | 'block'; kinds?: PiiKind[]; output?: boolean };
  opa_endpoint?: string;
  opa_timeout_ms?: number;
  opa_fail_mode?: 'open' | 'closed';
}

export const guardrailsUpdateSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    blocklist: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    pii: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        action: { enum: ['off', 'redact', 'block'] },
        kinds: { type: 'array', uniqueItems: true, items: { enum: [...PII_KINDS] } },
        output: { type: 'boolean' },
      },
    },
    // '' turns the external engine off.
    opa_endpoint: { type: 'string', maxLength: 4096, pattern: '^$|^(https?|file)://\\S+$' },
    opa_timeout_ms: { type: 'integer', minimum: 1, maximum: 60_000 },
    opa_fail_mode: { enum: ['open', 'closed'] },
  },
} as const;

export interface RateLimitUpdate {
  requests_per_minute?: number;
  tokens_per_minute?: number;
  tenant_requests_per_minute?: number;
  tenant_tokens_per_minute?: number;
}

/** 0 = unlimited. */
const perMinute = { type: 'integer', minimum: 0, maximum: 1_000_000_000 } as const;

export const rateLimitUpdateSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    requests_per_minute: perMinute,
    tokens_per_minute: perMinute,
    tenant_requests_per_minute: perMinute,
    tenant_tokens_per_minute: perMinute,
  },
} as const;

export interface ApiKeyCreate {
  scopes: Scope[];
  tenant?: string;
  priority?: number;
  label?: string;
  /** A key of the operator's choosing (migrating an existing secret) instead of a generated one. */
  key?: string;
  /** Or only its SHA-256: the secret never reaches the server. */
  key_sha256?: string;
}

export const apiKeyCreateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['scopes'],
  properties: {
    scopes: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...SCOPES] } },
    // Same rule as configured keys (src/policy/api-keys.ts TENANT_PATTERN).
    tenant: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
    priority: { type: 'integer', minimum: -1000, maximum: 1000 },
    label: { type: 'string', maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]*$' },
    // Same rules as configured keys (src/config/api-key-spec.ts).
    key: { type: 'string', minLength: MIN_KEY_LENGTH, maxLength: MAX_KEY_LENGTH, pattern: '^\\S+$' },
    key_sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
  },
} as const;

export function guardrailsView(g: GuardrailPolicy, version: number) {
  return {
    object: 'guardrails',
    blocklist: g.blocklist,
    pii: { action: g.pii.action, kinds: g.pii.kinds, output: g.pii.output !== false },
    opa_endpoint: g.opaEndpoint,
    opa_timeout_ms: g.opaTimeoutMs,
    opa_fail_mode: g.opaFailMode,
    policy_version: version,
  };
}

export function rateLimitView(r: RateLimitPolicy, version: number) {
  return {
    object: 'rate_limit',
    requests_per_minute: r.requestsPerMinute,
    tokens_per_minute: r.tokensPerMinute,
    tenant_requests_per_minute: r.tenantRequestsPerMinute,
    tenant_tokens_per_minute: r.tenantTokensPerMinute,
    policy_version: version,
  };
}

/** Never the hash: the id (12 hex of it) identifies a key without helping anyone guess it. */
export function apiKeyView(k: ApiKeyRecord) {
  return {
    id: k.id,
    object: 'api_key',
    label: k.label ?? null,
    scopes: k.scopes,
    tenant: k.tenant,
    priority: k.priority ?? 0,
    origin: k.origin,
    created_at: k.createdAt,
  };
}
