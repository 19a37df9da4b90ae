/**
 * JSON schema of the raw (snake_case, YAML-shaped) configuration, built from one rule table so the
 * ajv check and the error message a user sees come from the same line. `auto` is still allowed
 * here; `load.ts` resolves it after validation.
 */

interface Rule {
  schema: Record<string, unknown>;
  /** What a valid value looks like, shown after the key path. */
  expect: string;
}

function int(min: number, max: number): Rule {
  return { schema: { type: 'integer', minimum: min, maximum: max }, expect: `must be an integer ${min}..${max}` };
}

function intOrAuto(min: number, max: number): Rule {
  return {
    schema: { anyOf: [{ const: 'auto' }, { type: 'integer', minimum: min, maximum: max }] },
    expect: `must be "auto" or an integer ${min}..${max}`,
  };
}

function str(minLength: number, maxLength: number): Rule {
  return { schema: { type: 'string', minLength, maxLength }, expect: `must be a string of ${minLength}..${maxLength} characters` };
}

/** `*`, `*.example.com`, `name`, `1.2.3.4`, `[::1]`, each but `*` optionally with `:port`. */
const ALLOWED_HOST_PATTERN = '^(\\*|(\\*\\.)?[A-Za-z0-9_.-]+(:[0-9]{1,5})?|\\[[0-9A-Fa-f:.]+\\](:[0-9]{1,5})?)$';

const bool: Rule = { schema: { type: 'boolean' }, expect: 'must be true or false' };

function strList(minItems: number, maxItems: number, minLength: number, maxLength: number, what: string): Rule {
  return {
    schema: { type: 'array', minItems, maxItems, items: { type: 'string', minLength, maxLength } },
    expect: `must be a list of up to ${maxItems} ${what}`,
  };
}

/**
 * Leaf rules by dotted path; `models[]` stands for every entry of the model list. Bounds are loose
 * sanity limits that keep nonsense (negative ports, zero contexts) out of native code.
 */
export const RULES: Record<string, Rule> = {
  'server.host': str(1, 255),
  'server.port': int(0, 65535),
  'server.max_body_bytes': int(1024, 1024 * 1024 * 1024),
  // uWS resets connections whose head passes ~128 KiB before we see them.
  'server.max_header_bytes': int(1024, 65536),
  'server.allowed_hosts': {
    schema: {
      anyOf: [
        { const: 'auto' },
        { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', maxLength: 261, pattern: ALLOWED_HOST_PATTERN } },
      ],
    },
    expect: 'must be "auto" or a list of host names or IPs (optionally with :port), [IPv6], *.domain or "*"',
  },
  // uWebSockets.js compiles its HTTP idle timeout in (10 s); accepting another value would be a lie.
  'server.idle_timeout_seconds': { schema: { const: 10 }, expect: 'must be 10 (uWebSockets.js fixes the HTTP idle timeout at 10 s)' },
  'server.sse_heartbeat_seconds': int(1, 3600),
  'server.sse_max_buffered_bytes': int(1024, 1024 * 1024 * 1024),
  'server.models_dir': str(0, 4096),
  'server.admin_load_dir': str(0, 4096),
  'server.models_state_path': str(0, 4096),
  'server.log_level': {
    schema: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
    expect: 'must be one of trace, debug, info, warn, error, fatal, silent',
  },
  'server.log_format': { schema: { enum: ['auto', 'json', 'pretty'] }, expect: 'must be "auto", "json" or "pretty"' },
  'server.log_tool_calls': bool,
  // One leaf for the whole mapping (tenant names are free-form keys).
  'server.log_sampling': {
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['rate', 'tenants'],
      properties: {
        rate: { type: 'number', minimum: 0, maximum: 1 },
        tenants: { type: 'object', maxProperties: 10_000, propertyNames: { minLength: 1, maxLength: 256 }, additionalProperties: { type: 'number', minimum: 0, maximum: 1 } },
      },
    },
    expect: 'must be {rate: 0..1, tenants: {<tenant>: 0..1}}',
  },
  'telemetry.otlp_endpoint': {
    schema: { type: 'string', maxLength: 2048, pattern: '^$|^https?://' },
    expect: 'must be "" (no traces) or an http:// or https:// URL',
  },
  'model.path': str(0, 4096),
  'models[].id': {
    schema: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]*$' },
    expect: 'must be 1..128 characters of [A-Za-z0-9._:/-], starting with a letter or digit',
  },
  'models[].path': str(1, 4096),
  'models[].model': str(1, 300),
  'models[].default': bool,
  'models[].embeddings': {
    schema: { anyOf: [{ const: 'auto' }, { type: 'boolean' }] },
    expect: 'must be "auto", true or false',
  },
  'models[].backend': {
    schema: { enum: ['cpu', 'mps', 'auto'] },
    expect: 'must be "cpu", "mps" (Metal, on macOS with Apple silicon) or "auto" (the first of runtime.backend_priority this machine has)',
  },
  'runtime.threads_per_worker': intOrAuto(1, 1024),
  'runtime.sequences_per_worker': intOrAuto(1, 256),
  'runtime.context_size': int(64, 1048576),
  'runtime.batch_size': int(1, 65536),
  'runtime.prefill_chunk': int(1, 65536),
  'runtime.prefill_chunk_decoding': int(1, 65536),
  'runtime.prefill_spread_tokens': int(0, 65536),
  'runtime.cores': intOrAuto(1, 4096),
  'runtime.threadpool': {
    schema: { enum: ['auto', 'persistent', 'per_step'] },
    expect: 'must be "auto", "persistent" or "per_step"',
  },
  'runtime.threadpool_poll': int(0, 100),
  'runtime.flash_attention': { schema: { enum: ['auto', 'on', 'off'] }, expect: 'must be "auto", "on" or "off"' },
  'runtime.mps_layers': intOrAuto(0, 100_000),
  'runtime.backend_priority': {
    schema: { type: 'array', minItems: 1, maxItems: 2, uniqueItems: true, items: { enum: ['cpu', 'mps'] } },
    expect: 'must be a list of distinct backends, each "cpu" or "mps", most preferred first',
  },
  'runtime.fairness.enable_preemption': bool,
  'runtime.fairness.high_priority_threshold': int(-1000, 1000),
  'runtime.fairness.max_timeslice_tokens': int(0, 1_000_000),
  'runtime.paged_kv.cpu_pages': int(0, 1_048_576),
  'runtime.paged_kv.eviction': { schema: { enum: ['lru', 'clock'] }, expect: 'must be "lru" or "clock"' },
  'runtime.nvme_offload.path': str(0, 4096),
  'runtime.nvme_offload.workers': int(1, 64),
  'runtime.nvme_offload.queue_depth': int(1, 65536),
  'runtime.response_cache.enabled': bool,
  'runtime.cache_isolation': { schema: { enum: ['shared', 'tenant'] }, expect: 'must be "shared" or "tenant"' },
  'runtime.response_cache.max_entries': int(1, 10_000_000),
  'runtime.response_cache.max_bytes': int(1024, 64 * 1024 * 1024 * 1024),
  'runtime.memory_budget_bytes': intOrAuto(1024 * 1024, Number.MAX_SAFE_INTEGER),
  'runtime.embeddings.workers': int(1, 64),
  'runtime.embeddings.threads': int(1, 1024),
  'runtime.embeddings.context_size': intOrAuto(16, 1048576),
  'runtime.embeddings.batch_max': int(1, 65536),
  'runtime.embeddings.max_queue': int(0, 1_000_000),
  'runtime.speculative_decoding.enabled': bool,
  'runtime.speculative_decoding.draft_model': str(0, 4096),
  'runtime.speculative_decoding.max_prefill_tokens': int(1, 1_048_576),
  'runtime.speculative_decoding.chunk_size': int(1, 64),
  'scheduler.decode_pool_size': intOrAuto(1, 1024),
  'scheduler.prefill_pool_size': int(0, 1024),
  'scheduler.kv_ring_bytes': int(65536, 2 * 1024 * 1024 * 1024 - 65536),
  'scheduler.max_queue': int(0, 1_000_000),
  'scheduler.isolate_prompt_tokens': int(0, 10_000_000),
  'scheduler.placement': { schema: { enum: ['auto', 'pack', 'spread'] }, expect: 'must be "auto", "pack" or "spread"' },
  'scheduler.tokenizer_workers': int(1, 256),
  'guardrails.blocklist': {
    schema: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    expect: 'must be a list of up to 10000 terms of 1..1024 characters',
  },
  // One leaf for the whole mapping, so the rule does not depend on nested-section support.
  'guardrails.pii': {
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        action: { enum: ['off', 'redact', 'block'] },
        kinds: { type: 'array', uniqueItems: true, maxItems: 5, items: { enum: ['email', 'phone', 'credit_card', 'iban', 'secret'] } },
        output: { type: 'boolean' },
      },
    },
    expect: 'must be {action: off|redact|block, kinds: [email, phone, credit_card, iban, secret], output: true|false}',
  },
  'guardrails.opa_endpoint': {
    schema: { type: 'string', maxLength: 4096, pattern: '^(|(https?|file)://.+)$' },
    expect: 'must be "" or a URL starting with http://, https:// or file://',
  },
  'guardrails.opa_timeout_ms': int(1, 60_000),
  'guardrails.opa_fail_mode': { schema: { enum: ['open', 'closed'] }, expect: 'must be "open" or "closed"' },
  'limits.max_tokens': int(1, 1048576),
  'limits.max_n': int(1, 128),
  'limits.max_stop': int(0, 64),
  'limits.max_concurrent_requests_per_key': int(0, 100_000),
  'audit.path': str(1, 4096),
  'audit.debug_mode': bool,
  'audit.flush_interval_ms': int(1, 10_000),
  'policy.store_path': str(1, 4096),
  'policy.watch_interval_seconds': int(1, 3600),
  'policy.redis_url': {
    schema: { type: 'string', maxLength: 2048, pattern: '^$|^rediss?://' },
    expect: 'must be "" (the store file) or a redis:// or rediss:// URL',
  },
  'policy.redis_key': str(1, 256),
  'server.grpc.enabled': bool,
  'server.grpc.port': int(0, 65535),
  'server.tls.enabled': bool,
  'server.tls.cert_path': str(0, 4096),
  'server.tls.key_path': str(0, 4096),
  'server.cors.allowed_origins': strList(0, 64, 1, 512, 'origins such as https://app.example.com, or "*"'),
  'server.cors.allowed_headers': strList(0, 64, 1, 128, 'header names, or "*" to allow what the browser asks for'),
  'server.cors.max_age_seconds': int(0, 86400),
  'pull.hub_url': str(1, 2048),
  'pull.allowed_private_hosts': strList(0, 256, 1, 256, 'host names, IPs or CIDRs (10.0.0.0/8)'),
  'auth.enabled': {
    schema: { anyOf: [{ const: 'auto' }, { type: 'boolean' }] },
    expect: 'must be "auto", true or false',
  },
  'auth.api_keys': {
    schema: {
      type: 'array',
      maxItems: 10_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['scopes'],
        properties: {
          key: { type: 'string', minLength: 8, maxLength: 512 },
          key_sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
          scopes: { type: 'array', minItems: 1, maxItems: 4, items: { enum: ['admin', 'read', 'generate', 'adapter-manager'] } },
          tenant: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
          priority: { type: 'integer', minimum: -1000, maximum: 1000 },
        },
      },
    },
    expect: 'must be a list of {key | key_sha256, scopes, tenant?, priority?}',
  },
  'auth.metrics_public': bool,
  'auth.oidc.issuer': str(0, 2048),
  'auth.oidc.audience': str(0, 512),
  'auth.oidc.jwks_uri': str(0, 2048),
  'auth.oidc.scopes_claim': str(1, 128),
  'auth.oidc.tenant_claim': str(1, 128),
  'auth.oidc.clock_skew_seconds': int(0, 600),
  'auth.oidc.jwks_cooldown_seconds': int(0, 3600),
  'auth.oidc.algorithms': {
    schema: { type: 'array', minItems: 1, maxItems: 8, uniqueItems: true, items: { enum: ['RS256', 'ES256', 'PS256', 'EdDSA'] } },
    expect: 'must be a non-empty list of RS256, ES256, PS256, EdDSA',
  },
  'rate_limit.requests_per_minute': int(0, 1_000_000_000),
  'rate_limit.tokens_per_minute': int(0, 1_000_000_000),
  'rate_limit.tenant_requests_per_minute': int(0, 1_000_000_000),
  'rate_limit.tenant_tokens_per_minute': int(0, 1_000_000_000),
  'rate_limit.redis_url': {
    schema: { type: 'string', maxLength: 2048, pattern: '^$|^rediss?://' },
    expect: 'must be "" (buckets in this process) or a redis:// or rediss:// URL',
  },
  'rate_limit.redis_prefix': str(1, 128),
  'rate_limit.redis_timeout_ms': int(1, 10_000),
  'rate_limit.redis_fail_mode': { schema: { enum: ['local', 'open', 'closed'] }, expect: 'must be "local", "open" or "closed"' },
};

/** Messages for structural (non-leaf) keys. */
export const SECTION_EXPECT: Record<string, string> = {
  '': 'must be a mapping of sections',
  'guardrails.pii.action': 'must be "off", "redact" or "block"',
  'guardrails.pii.kinds': 'must be a list of distinct kinds: email, phone, credit_card, iban, secret',
  'guardrails.pii.kinds[]': 'must be one of email, phone, credit_card, iban, secret',
  'guardrails.blocklist[]': 'must be a term of 1..1024 characters',
  models: 'must be a list of {id, path | model, default, backend, embeddings} with at least one entry',
  'models[]': 'must be a mapping with id and path (or model: a pulled model name)',
  'auth.api_keys[]': 'must be a mapping {key | key_sha256, scopes, tenant?, priority?}',
  'auth.api_keys[].scopes[]': 'must be one of admin, read, generate, adapter-manager',
  'auth.api_keys[].key': 'must be a string of 8..512 characters',
  'auth.api_keys[].key_sha256': 'must be 64 hex characters (sha256sum of the key)',
  'auth.api_keys[].tenant': 'must be 1..128 characters of [A-Za-z0-9._:-]',
  'auth.api_keys[].scopes': 'must be a list of 1..4 scopes',
};

/** Builds the nested object schema from the dotted rule table. */
function buildSchema(): Record<string, unknown> {
  const root: Record<string, unknown> = { type: 'object', additionalProperties: false, properties: {} };
  const modelEntry = {
    type: 'object',
    additionalProperties: false,
    // path or model (a pulled name), and the id, are checked in load.ts with clearer messages.
    required: [] as string[],
    properties: {} as Record<string, unknown>,
  };
  const rootProps = root.properties as Record<string, Record<string, unknown>>;
  rootProps.models = { type: 'array', minItems: 1, maxItems: 64, items: modelEntry };
  for (const [path, rule] of Object.entries(RULES)) {
    const [section, key] = path.split('.') as [string, string];
    if (section === 'models[]') {
      modelEntry.properties[key] = rule.schema;
      continue;
    }
    // Nested sections (`server.tls.enabled`) become nested objects, each closed to unknown keys.
    const parts = path.split('.');
    let props = rootProps as Record<string, Record<string, unknown>>;
    for (const part of parts.slice(0, -1)) {
      const sec = (props[part] ??= { type: 'object', additionalProperties: false, properties: {} });
      props = sec.properties as Record<string, Record<string, unknown>>;
    }
    props[parts[parts.length - 1]!] = rule.schema;
  }
  return root;
}

export const CONFIG_SCHEMA = buildSchema();
