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

const bool: Rule = { schema: { type: 'boolean' }, expect: 'must be true or false' };

/**
 * Leaf rules by dotted path; `models[]` stands for every entry of the model list. Bounds are loose
 * sanity limits that keep nonsense (negative ports, zero contexts) out of native code.
 */
export const RULES: Record<string, Rule> = {
  'server.host': str(1, 255),
  'server.port': int(0, 65535),
  'server.max_body_bytes': int(1024, 1024 * 1024 * 1024),
  // uWebSockets.js compiles its HTTP idle timeout in (10 s); accepting another value would be a lie.
  'server.idle_timeout_seconds': { schema: { const: 10 }, expect: 'must be 10 (uWebSockets.js fixes the HTTP idle timeout at 10 s)' },
  'server.sse_heartbeat_seconds': int(1, 3600),
  'server.sse_max_buffered_bytes': int(1024, 1024 * 1024 * 1024),
  'model.path': str(0, 4096),
  'models[].id': {
    schema: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]*$' },
    expect: 'must be 1..128 characters of [A-Za-z0-9._:/-], starting with a letter or digit',
  },
  'models[].path': str(1, 4096),
  'models[].default': bool,
  'models[].backend': { schema: { enum: ['cpu'] }, expect: 'must be "cpu" (the only backend this build has)' },
  'runtime.threads_per_worker': intOrAuto(1, 1024),
  'runtime.sequences_per_worker': intOrAuto(1, 256),
  'runtime.context_size': int(64, 1048576),
  'runtime.batch_size': int(1, 65536),
  'runtime.prefill_chunk': int(1, 65536),
  'runtime.cores': intOrAuto(1, 4096),
  'scheduler.decode_pool_size': intOrAuto(1, 1024),
  'scheduler.prefill_pool_size': int(0, 1024),
  'scheduler.max_queue': int(0, 1_000_000),
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
      },
    },
    expect: 'must be {action: off|redact|block, kinds: [email, phone, credit_card, iban, secret]}',
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
  'audit.path': str(1, 4096),
  'audit.debug_mode': bool,
  'policy.store_path': str(1, 4096),
  'policy.watch_interval_seconds': int(1, 3600),
};

/** Messages for structural (non-leaf) keys. */
export const SECTION_EXPECT: Record<string, string> = {
  '': 'must be a mapping of sections',
  'guardrails.pii.action': 'must be "off", "redact" or "block"',
  'guardrails.pii.kinds': 'must be a list of distinct kinds: email, phone, credit_card, iban, secret',
  'guardrails.pii.kinds[]': 'must be one of email, phone, credit_card, iban, secret',
  'guardrails.blocklist[]': 'must be a term of 1..1024 characters',
  models: 'must be a list of {id, path, default, backend} with at least one entry',
  'models[]': 'must be a mapping with id and path',
};

/** Builds the nested object schema from the dotted rule table. */
function buildSchema(): Record<string, unknown> {
  const root: Record<string, unknown> = { type: 'object', additionalProperties: false, properties: {} };
  const modelEntry = {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'path'],
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
    const sec = (rootProps[section] ??= { type: 'object', additionalProperties: false, properties: {} });
    (sec.properties as Record<string, unknown>)[key] = rule.schema;
  }
  return root;
}

export const CONFIG_SCHEMA = buildSchema();
