/**
 * JSON schema of a stored `PolicyDocument`. A file that decrypts (or parses) but does not match is
 * refused with the path of the first bad field: a hand-edited or foreign store must fail loudly at
 * start, not half-apply. Compiled once.
 */
import { Ajv } from 'ajv';
import { SCOPES, type PolicyDocument } from '../types.js';
import { PolicyStoreError } from './envelope.js';

export const PII_KINDS = ['email', 'phone', 'credit_card', 'iban', 'secret'] as const;

const perMinute = { type: 'integer', minimum: 0, maximum: 1_000_000_000 } as const;

export const rateLimitSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['requestsPerMinute', 'tokensPerMinute', 'tenantRequestsPerMinute', 'tenantTokensPerMinute'],
  properties: {
    requestsPerMinute: perMinute,
    tokensPerMinute: perMinute,
    tenantRequestsPerMinute: perMinute,
    tenantTokensPerMinute: perMinute,
  },
} as const;

export const guardrailsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['blocklist', 'pii', 'opaEndpoint', 'opaTimeoutMs', 'opaFailMode'],
  properties: {
    blocklist: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    pii: {
      type: 'object',
      additionalProperties: false,
      required: ['action', 'kinds'],
      properties: {
        action: { enum: ['off', 'redact', 'block'] },
        kinds: { type: 'array', uniqueItems: true, items: { enum: [...PII_KINDS] } },
        // Absent in documents written before it existed: true.
        output: { type: 'boolean' },
      },
    },
    opaEndpoint: { type: 'string', maxLength: 4096 },
    opaTimeoutMs: { type: 'integer', minimum: 1, maximum: 60_000 },
    opaFailMode: { enum: ['open', 'closed'] },
  },
} as const;

const apiKeySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['hash', 'id', 'scopes', 'tenant', 'createdAt', 'origin'],
  properties: {
    hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    id: { type: 'string', minLength: 1, maxLength: 128 },
    label: { type: 'string', maxLength: 256 },
    scopes: { type: 'array', uniqueItems: true, items: { enum: [...SCOPES] } },
    tenant: { type: 'string', minLength: 1, maxLength: 256 },
    priority: { type: 'integer', minimum: -1000, maximum: 1000 },
    createdAt: { type: 'string', maxLength: 64 },
    origin: { enum: ['config', 'env', 'store'] },
  },
} as const;

const documentSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'updatedAt', 'apiKeys', 'rateLimit', 'guardrails'],
  properties: {
    version: { type: 'integer', minimum: 0 },
    updatedAt: { type: 'string', maxLength: 64 },
    apiKeys: { type: 'array', maxItems: 100_000, items: apiKeySchema },
    rateLimit: rateLimitSchema,
    guardrails: guardrailsSchema,
    overrides: {
      type: 'object',
      additionalProperties: false,
      properties: { rateLimit: { type: 'string', maxLength: 64 }, guardrails: { type: 'string', maxLength: 64 } },
    },
  },
} as const;

const check = new Ajv({ allErrors: false, strict: true }).compile(documentSchema);

export function validateDocument(file: string, value: unknown): PolicyDocument {
  if (check(value)) return value as PolicyDocument;
  const e = check.errors![0]!;
  throw new PolicyStoreError(file, 'invalid_document', `stored document is invalid at ${e.instancePath || '(root)'}: ${e.message ?? 'invalid'}`);
}
