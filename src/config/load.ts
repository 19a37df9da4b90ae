/**
 * Builds the typed `InferFluxConfig` once at start-up: embedded default, then `INFERFLUX_CONFIG`
 * (or `config/server.yaml` under cwd), then `INFERFLUX_*` env overrides. Every leaf remembers
 * which layer set it, so a bad value fails with its key path, the value and where it came from.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import envPaths from 'env-paths';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_CONFIG_YAML, DEMO_MODEL_PATH, RESERVED_SECTIONS } from './defaults.js';
import { CONFIG_SCHEMA, RULES, SECTION_EXPECT } from './schema.js';
import type { Backend, BackendExposure, InferFluxConfig, LogFormat, LogLevel, ModelEntry, PullConfig, RuntimeConfig } from './types.js';
import { redactUrlPasswords } from '../redact.js';
import type { GuardrailPolicy, PiiKind } from './policy-types.js';
import { ConfigError } from './errors.js';

export { ConfigError };
import { resolveAuth, resolveRateLimit, resolveRateLimitBackend, resolveServerEdges } from './policy-config.js';
import { resolveAllowedHosts } from './allowed-hosts.js';


type Raw = Record<string, unknown>;
/** Dotted path -> where its value came from (`built-in default`, a file path, or an env name). */
type Provenance = Map<string, string>;

// Compiled once per process: the schema is static.
const validate = new Ajv({ allErrors: false, strict: true }).compile(CONFIG_SCHEMA);

function isMap(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function modelIdFromPath(p: string): string {
  return path.basename(p).replace(/\.gguf$/i, '');
}

/** Turns one layer's legacy `model.path` into a model list and drops sections owned by later work. */
function normaliseLayer(layer: unknown, source: string): Raw {
  if (layer === null || layer === undefined) return {};
  if (!isMap(layer)) throw new ConfigError('(root)', `${SECTION_EXPECT['']} (in ${source})`);
  const out: Raw = { ...layer };
  for (const s of RESERVED_SECTIONS) delete out[s];
  const legacy = isMap(out.model) ? out.model.path : undefined;
  if (typeof legacy === 'string' && legacy !== '') {
    if (out.models !== undefined) {
      throw new ConfigError('model.path', `set either model.path or models, not both (in ${source})`);
    }
    out.models = [{ id: modelIdFromPath(legacy), path: legacy, default: true }];
  }
  // The fairness knobs are documented under both `runtime.fairness` and `scheduler.fairness`
  // (the product docs use either); one layer may use one of them.
  if (isMap(out.scheduler) && out.scheduler.fairness !== undefined && (out.runtime === undefined || isMap(out.runtime))) {
    const { fairness, ...scheduler } = out.scheduler;
    if (isMap(out.runtime) && out.runtime.fairness !== undefined) {
      throw new ConfigError('scheduler.fairness', `set either scheduler.fairness or runtime.fairness, not both (in ${source})`);
    }
    out.scheduler = scheduler;
    out.runtime = { ...(out.runtime as Raw | undefined), fairness };
  }
  return out;
}

/** Objects merge key by key; arrays and scalars replace (a model list is one value). */
function merge(target: Raw, layer: Raw, source: string, prov: Provenance, prefix = ''): void {
  for (const [k, v] of Object.entries(layer)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isMap(v) && isMap(target[k])) {
      merge(target[k] as Raw, v, source, prov, key);
    } else {
      target[k] = isMap(v) ? structuredClone(v) : v;
      markSource(v, key, source, prov);
    }
  }
}

function markSource(v: unknown, key: string, source: string, prov: Provenance): void {
  prov.set(key, source);
  if (isMap(v)) for (const [k, child] of Object.entries(v)) markSource(child, `${key}.${k}`, source, prov);
}

function readYamlFile(file: string): unknown {
  try {
    return parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${file}: ${(err as Error).message}`);
  }
}

// ---- environment -------------------------------------------------------------------------------

/** Env values stay strings unless they look like the target type, so errors show what was given. */
function envInt(v: string): unknown {
  const t = v.trim();
  if (t === 'auto') return 'auto';
  return /^-?\d+$/.test(t) ? Number(t) : v;
}

function envNumber(v: string): unknown {
  const t = v.trim();
  return /^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$/i.test(t) ? Number(t) : v;
}

function envBool(v: string): unknown {
  const t = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  return v;
}

/** `a, b,c` -> ['a', 'b', 'c']; empty items dropped. */
function envList(v: string): unknown {
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

const ENV_SCALARS: [env: string, key: string, coerce: (v: string) => unknown][] = [
  ['INFERFLUX_HOST', 'server.host', (v) => v],
  ['INFERFLUX_LOG_LEVEL', 'server.log_level', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_LOG_FORMAT', 'server.log_format', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_LOG_TOOL_CALLS', 'server.log_tool_calls', envBool],
  ['INFERFLUX_LOG_SAMPLE_RATE', 'server.log_sampling.rate', envNumber],
  ['INFERFLUX_PORT', 'server.port', envInt],
  ['INFERFLUX_MAX_BODY_BYTES', 'server.max_body_bytes', envInt],
  ['INFERFLUX_MAX_HEADER_BYTES', 'server.max_header_bytes', envInt],
  ['INFERFLUX_ALLOWED_HOSTS', 'server.allowed_hosts', (v) => (v.trim() === 'auto' ? 'auto' : envList(v))],
  ['INFERFLUX_MAX_CONCURRENT_REQUESTS_PER_KEY', 'limits.max_concurrent_requests_per_key', envInt],
  ['INFERFLUX_AUDIT_LOG', 'audit.path', (v) => v],
  ['INFERFLUX_AUDIT_DEBUG', 'audit.debug_mode', envBool],
  ['INFERFLUX_AUDIT_FLUSH_INTERVAL_MS', 'audit.flush_interval_ms', envInt],
  ['INFERFLUX_POLICY_STORE', 'policy.store_path', (v) => v],
  ['INFERFLUX_POLICY_REDIS_URL', 'policy.redis_url', (v) => v.trim()],
  ['INFERFLUX_AUTH_ENABLED', 'auth.enabled', (v) => (v.trim() === 'auto' ? 'auto' : envBool(v))],
  ['INFERFLUX_OIDC_ISSUER', 'auth.oidc.issuer', (v) => v],
  ['INFERFLUX_OIDC_AUDIENCE', 'auth.oidc.audience', (v) => v],
  ['INFERFLUX_RATE_LIMIT_PER_MINUTE', 'rate_limit.requests_per_minute', envInt],
  ['INFERFLUX_RATE_LIMIT_REDIS_URL', 'rate_limit.redis_url', (v) => v.trim()],
  ['INFERFLUX_RATE_LIMIT_REDIS_FAIL_MODE', 'rate_limit.redis_fail_mode', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_GRPC_ENABLED', 'server.grpc.enabled', envBool],
  ['INFERFLUX_GRPC_PORT', 'server.grpc.port', envInt],
  ['INFERFLUX_TLS_ENABLED', 'server.tls.enabled', envBool],
  ['INFERFLUX_TLS_CERT_PATH', 'server.tls.cert_path', (v) => v],
  ['INFERFLUX_TLS_KEY_PATH', 'server.tls.key_path', (v) => v],
  ['INFERFLUX_DECODE_POOL_SIZE', 'scheduler.decode_pool_size', envInt],
  ['INFERFLUX_PREFILL_POOL_SIZE', 'scheduler.prefill_pool_size', envInt],
  ['INFERFLUX_KV_RING_BYTES', 'scheduler.kv_ring_bytes', envInt],
  ['INFERFLUX_ISOLATE_PROMPT_TOKENS', 'scheduler.isolate_prompt_tokens', envInt],
  ['INFERFLUX_PLACEMENT', 'scheduler.placement', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_THREADS_PER_WORKER', 'runtime.threads_per_worker', envInt],
  ['INFERFLUX_SEQUENCES_PER_WORKER', 'runtime.sequences_per_worker', envInt],
  ['INFERFLUX_CONTEXT_SIZE', 'runtime.context_size', envInt],
  ['INFERFLUX_CORES', 'runtime.cores', envInt],
  ['INFERFLUX_THREADPOOL', 'runtime.threadpool', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_THREADPOOL_POLL', 'runtime.threadpool_poll', envInt],
  ['INFERFLUX_FLASH_ATTENTION', 'runtime.flash_attention', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_MPS_LAYERS', 'runtime.mps_layers', envInt],
  ['INFERFLUX_BACKEND_PRIORITY', 'runtime.backend_priority', (v) => envList(v.toLowerCase())],
  ['INFERFLUX_PREFILL_CHUNK', 'runtime.prefill_chunk', envInt],
  ['INFERFLUX_PREFILL_CHUNK_DECODING', 'runtime.prefill_chunk_decoding', envInt],
  ['INFERFLUX_PREFILL_SPREAD_TOKENS', 'runtime.prefill_spread_tokens', envInt],
  ['INFERFLUX_KV_CPU_PAGES', 'runtime.paged_kv.cpu_pages', envInt],
  ['INFERFLUX_KV_EVICTION', 'runtime.paged_kv.eviction', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_NVME_OFFLOAD_PATH', 'runtime.nvme_offload.path', (v) => v],
  ['INFERFLUX_NVME_WORKERS', 'runtime.nvme_offload.workers', envInt],
  ['INFERFLUX_NVME_QUEUE_DEPTH', 'runtime.nvme_offload.queue_depth', envInt],
  ['INFERFLUX_RESPONSE_CACHE', 'runtime.response_cache.enabled', envBool],
  ['INFERFLUX_CACHE_ISOLATION', 'runtime.cache_isolation', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_EMBEDDINGS_WORKERS', 'runtime.embeddings.workers', envInt],
  ['INFERFLUX_EMBEDDINGS_THREADS', 'runtime.embeddings.threads', envInt],
  ['INFERFLUX_EMBEDDINGS_CONTEXT_SIZE', 'runtime.embeddings.context_size', envInt],
  ['INFERFLUX_EMBEDDINGS_BATCH_MAX', 'runtime.embeddings.batch_max', envInt],
  ['INFERFLUX_EMBEDDINGS_MAX_QUEUE', 'runtime.embeddings.max_queue', envInt],
  ['INFERFLUX_SPECULATIVE_ENABLED', 'runtime.speculative_decoding.enabled', envBool],
  ['INFERFLUX_SPEC_DRAFT_MODEL', 'runtime.speculative_decoding.draft_model', (v) => v],
  ['INFERFLUX_SPEC_MAX_PREFILL', 'runtime.speculative_decoding.max_prefill_tokens', envInt],
  ['INFERFLUX_SPEC_CHUNK_SIZE', 'runtime.speculative_decoding.chunk_size', envInt],
  ['INFERFLUX_GUARDRAIL_BLOCKLIST', 'guardrails.blocklist', envList],
  ['INFERFLUX_GUARDRAIL_OPA_ENDPOINT', 'guardrails.opa_endpoint', (v) => v.trim()],
  ['INFERFLUX_GUARDRAIL_OPA_TIMEOUT_MS', 'guardrails.opa_timeout_ms', envInt],
  ['INFERFLUX_GUARDRAIL_OPA_FAIL_MODE', 'guardrails.opa_fail_mode', (v) => v.trim().toLowerCase()],
  ['INFERFLUX_MODELS_DIR', 'server.models_dir', (v) => v],
  ['INFERFLUX_ADMIN_LOAD_DIR', 'server.admin_load_dir', (v) => v],
  ['INFERFLUX_MODELS_STATE', 'server.models_state_path', (v) => v.trim()],
  // HF_ENDPOINT first, so INFERFLUX_HUB_URL wins when both are set (the later layer is merged last).
  ['HF_ENDPOINT', 'pull.hub_url', (v) => v.trim()],
  ['INFERFLUX_HUB_URL', 'pull.hub_url', (v) => v.trim()],
  ['INFERFLUX_PULL_ALLOWED_HOSTS', 'pull.allowed_private_hosts', envList],
  ['INFERFLUX_MEMORY_BUDGET_BYTES', 'runtime.memory_budget_bytes', envInt],
];

/** `id=llama3,path=/m/a.gguf,backend=cpu,default=true;id=...` -> raw model entries. */
export function parseModelsEnv(value: string): Raw[] {
  const entries = value.split(';').map((s) => s.trim()).filter((s) => s !== '');
  if (entries.length === 0) throw new ConfigError('models', 'INFERFLUX_MODELS names no model');
  return entries.map((entry, i) => {
    const out: Raw = {};
    for (const part of entry.split(',')) {
      const eq = part.indexOf('=');
      const k = (eq < 0 ? part : part.slice(0, eq)).trim();
      const v = eq < 0 ? '' : part.slice(eq + 1).trim();
      if (!['id', 'path', 'model', 'backend', 'default', 'embeddings'].includes(k)) {
        throw new ConfigError(`models[${i}]`, `unknown field "${k}" in INFERFLUX_MODELS entry ${i + 1} (fields: id, path, model, backend, default, embeddings)`);
      }
      out[k] = k === 'default' ? envBool(v) : k === 'embeddings' && v.trim() !== 'auto' ? envBool(v) : v;
    }
    if (typeof out.model === 'string' && out.model !== '') {
      if (out.path !== undefined) throw new ConfigError(`models[${i}]`, `set either path or model, not both (INFERFLUX_MODELS entry ${i + 1})`);
      out.id ??= out.model;
      return out;
    }
    if (typeof out.path !== 'string' || out.path === '') {
      throw new ConfigError(`models[${i}].path`, `is required, or model: a pulled model name (INFERFLUX_MODELS entry ${i + 1})`);
    }
    out.id ??= modelIdFromPath(out.path);
    return out;
  });
}

/** One override per set env var, as a one-key layer so provenance names the variable. */
function envOverrides(env: NodeJS.ProcessEnv): { env: string; layer: Raw }[] {
  const out: { env: string; layer: Raw }[] = [];
  for (const [name, key, coerce] of ENV_SCALARS) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    // `server.tls.enabled` -> { server: { tls: { enabled: v } } }
    const layer = key.split('.').reduceRight<unknown>((inner, part) => ({ [part]: inner }), coerce(v)) as Raw;
    out.push({ env: name, layer });
  }
  const modelPath = env.INFERFLUX_MODEL_PATH;
  const models = env.INFERFLUX_MODELS;
  if (modelPath && models) throw new ConfigError('models', 'set INFERFLUX_MODEL_PATH or INFERFLUX_MODELS, not both');
  if (modelPath) {
    out.push({ env: 'INFERFLUX_MODEL_PATH', layer: { models: [{ id: modelIdFromPath(modelPath), path: modelPath, default: true }] } });
  } else if (models) {
    out.push({ env: 'INFERFLUX_MODELS', layer: { models: parseModelsEnv(models) } });
  }
  return out;
}

// ---- validation --------------------------------------------------------------------------------

function valueAt(root: Raw, parts: string[]): unknown {
  let cur: unknown = root;
  for (const p of parts) cur = isMap(cur) || Array.isArray(cur) ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

function sourceOf(prov: Provenance, parts: string[]): string {
  // Model entries are one value per layer, so `models.0.id` comes from wherever `models` came from.
  for (let n = parts.length; n > 0; n--) {
    const s = prov.get(parts.slice(0, n).join('.'));
    if (s) return s;
  }
  return 'built-in default';
}

function schemaError(e: ErrorObject, raw: Raw, prov: Provenance): ConfigError {
  const parts = e.instancePath.split('/').slice(1);
  const display = (ps: string[]) => ps.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : (i ? '.' : '') + p)).join('') || '(root)';
  const ruleKey = parts.map((p) => (/^\d+$/.test(p) ? '[]' : p)).join('.').replace(/\.\[\]/g, '[]');
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    return new ConfigError(display([...parts, extra]), `unknown key (in ${sourceOf(prov, [...parts, extra])})`);
  }
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    return new ConfigError(display([...parts, missing]), `is required (in ${sourceOf(prov, parts)})`);
  }
  const expect = RULES[ruleKey]?.expect ?? SECTION_EXPECT[ruleKey] ?? (e.message ?? 'is invalid');
  // A URL's password (`redis://user:secret@host`) is never echoed into a start-up error.
  const got = redactUrlPasswords(String(JSON.stringify(valueAt(raw, parts))));
  return new ConfigError(display(parts), `${expect} (got ${got} from ${sourceOf(prov, parts)})`);
}

// ---- resolution --------------------------------------------------------------------------------

interface RawModel {
  id?: string;
  path?: string;
  /** A pulled model's name, instead of a path. */
  model?: string;
  default?: boolean;
  backend?: string;
  embeddings?: 'auto' | boolean;
}

/** Whether this machine has the backend: Metal is shipped by node-llama-cpp for macOS on Apple silicon only. */
function hasBackend(b: Backend, platform: { os: NodeJS.Platform; arch: string }): boolean {
  return b === 'cpu' || (platform.os === 'darwin' && platform.arch === 'arm64');
}

/** `backend: auto`: the first of the priority list this machine has (cpu if none), and the ones passed over. */
function autoBackend(priority: Backend[], platform: { os: NodeJS.Platform; arch: string }): { backend: Backend; skipped: Backend[] } {
  const at = priority.findIndex((b) => hasBackend(b, platform));
  return at < 0 ? { backend: 'cpu', skipped: [...priority] } : { backend: priority[at]!, skipped: priority.slice(0, at) };
}

function resolveModels(raw: RawModel[], cwd: string, platform: { os: NodeJS.Platform; arch: string }, priority: Backend[]): ModelEntry[] {
  const list = raw.map((m, i) => {
    if (m.backend === 'mps' && !hasBackend('mps', platform)) {
      throw new ConfigError(`models[${i}].backend`, `"mps" (Metal) needs macOS on Apple silicon; this machine is ${platform.os}/${platform.arch}: use backend "cpu"`);
    }
    if (m.path !== undefined && m.model !== undefined) throw new ConfigError(`models[${i}]`, 'set either path or model (a pulled model name), not both');
    if (m.path === undefined && m.model === undefined) throw new ConfigError(`models[${i}].path`, 'is required (or model: the name of a model pulled with inferctl pull)');
    // A pulled model is served under its name unless an id is given.
    const id = m.id ?? m.model;
    if (id === undefined) throw new ConfigError(`models[${i}].id`, 'is required');
    return { ...m, id };
  });
  const seen = new Set<string>();
  for (const [i, m] of list.entries()) {
    if (seen.has(m.id)) throw new ConfigError(`models[${i}].id`, `duplicate model id "${m.id}"`);
    seen.add(m.id);
  }
  const marked = list.filter((m) => m.default === true);
  if (marked.length > 1) {
    throw new ConfigError('models', `exactly one model may be default (got ${marked.map((m) => m.id).join(', ')})`);
  }
  const defaultId = (marked[0] ?? list[0]!).id;
  return list.map((m) => {
    const auto = m.backend === 'auto' ? autoBackend(priority, platform) : null;
    return {
      id: m.id,
      path: m.path === undefined ? '' : path.resolve(cwd, m.path),
      ...(m.model !== undefined ? { pulled: m.model } : {}),
      default: m.id === defaultId,
      backend: auto ? auto.backend : m.backend === 'mps' ? 'mps' : 'cpu',
      ...(auto ? { backendAuto: { skipped: auto.skipped } } : {}),
      generateIfMissing: m.path === DEMO_MODEL_PATH,
      embeddings: m.embeddings ?? 'auto',
    };
  });
}

function resolveGuardrails(g: Raw): GuardrailPolicy {
  const pii = g.pii as { action?: 'off' | 'redact' | 'block'; kinds?: PiiKind[]; output?: boolean };
  return {
    blocklist: [...(g.blocklist as string[])],
    pii: { action: pii.action ?? 'off', kinds: [...(pii.kinds ?? [])], output: pii.output ?? true },
    opaEndpoint: g.opa_endpoint as string,
    opaTimeoutMs: g.opa_timeout_ms as number,
    opaFailMode: g.opa_fail_mode as 'open' | 'closed',
  };
}

/** The machine's memory, or the cgroup's limit when a container sets a lower one. */
function machineMemory(): number {
  const total = os.totalmem();
  const limit = process.constrainedMemory?.() ?? 0;
  return limit > 0 && limit < total ? limit : total;
}

function autoOr(v: unknown, fallback: number): number {
  return v === 'auto' ? fallback : (v as number);
}

/** A configured model's backend (`models[].backend`); models loaded at runtime run on the CPU. */
export function modelBackend(config: InferFluxConfig, id: string): Backend {
  return config.models.find((m) => m.id === id)?.backend ?? 'cpu';
}

/**
 * Which backend a model asked for, which one it runs on, and why: `config` (its entry named one,
 * or left the default cpu), `priority` (`backend: auto`, the first of runtime.backend_priority this
 * machine has; `skipped` lists those before it that it lacks), `runtime` (loaded through the admin
 * API: cpu).
 */
export function backendExposure(config: InferFluxConfig, id: string): BackendExposure {
  const m = config.models.find((e) => e.id === id);
  if (!m) return { requested: 'cpu', exposed: 'cpu', provenance: 'runtime', skipped: [] };
  if (m.backendAuto) return { requested: 'auto', exposed: m.backend, provenance: 'priority', skipped: [...m.backendAuto.skipped] };
  return { requested: m.backend, exposed: m.backend, provenance: 'config', skipped: [] };
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The machine's OS and CPU (tests); defaults to this process's. */
  platform?: { os: NodeJS.Platform; arch: string };
}

export function loadConfig({ env = process.env, cwd = process.cwd(), platform = { os: process.platform, arch: process.arch } }: LoadConfigOptions = {}): InferFluxConfig {
  const prov: Provenance = new Map();
  const raw: Raw = {};
  merge(raw, normaliseLayer(parseYaml(DEFAULT_CONFIG_YAML), 'built-in default'), 'built-in default', prov);

  let source = 'built-in default';
  const explicit = env.INFERFLUX_CONFIG;
  const file = explicit ? path.resolve(cwd, explicit) : path.join(cwd, 'config', 'server.yaml');
  if (explicit && !existsSync(file)) throw new ConfigError('INFERFLUX_CONFIG', `file not found: ${file}`);
  if (existsSync(file)) {
    merge(raw, normaliseLayer(readYamlFile(file), file), file, prov);
    source = file;
  }

  const overrides = envOverrides(env);
  for (const o of overrides) merge(raw, o.layer, o.env, prov);
  if (overrides.length > 0) source += ` + env (${overrides.map((o) => o.env).join(', ')})`;

  if (!validate(raw)) throw schemaError(validate.errors![0]!, raw, prov);
  // Key env vars are named (never their values) next to the other overrides.
  const keyEnvs = ['INFERFLUX_API_KEYS', 'INFERCTL_API_KEY'].filter((n) => env[n]);
  if (keyEnvs.length > 0) source += ` + keys (${keyEnvs.join(', ')})`;
  return resolve(raw, cwd, source, prov, env, platform);
}

function resolve(raw: Raw, cwd: string, source: string, prov: Provenance, env: NodeJS.ProcessEnv, platform: { os: NodeJS.Platform; arch: string }): InferFluxConfig {
  const from = (key: string): string => sourceOf(prov, key.split('.'));
  const s = raw.server as Raw;
  const r = raw.runtime as Raw;
  const sch = raw.scheduler as Raw;
  const lim = raw.limits as Raw;
  const aud = raw.audit as Raw;
  const pol = raw.policy as Raw;
  const backendPriority = r.backend_priority as Backend[];
  const models = resolveModels(raw.models as RawModel[], cwd, platform, backendPriority);

  const cores = autoOr(r.cores, os.availableParallelism());
  // An explicit thread count shapes the auto pool size (not the other way round), so setting only
  // INFERFLUX_THREADS_PER_WORKER never trips the budget check by itself.
  const threadsSet = r.threads_per_worker !== 'auto';
  const decodeSet = sch.decode_pool_size !== 'auto';
  // Disaggregated mode: prefill workers take their share of the cores first.
  const prefillPoolSize = sch.prefill_pool_size as number;
  const decodePoolSize = autoOr(
    sch.decode_pool_size,
    Math.max(1, Math.floor(cores / (models.length * (threadsSet ? (r.threads_per_worker as number) : 1))) - prefillPoolSize),
  );
  const workersPerModel = decodePoolSize + prefillPoolSize;
  const threadsPerWorker = autoOr(r.threads_per_worker, Math.max(1, Math.floor(cores / (models.length * workersPerModel))));
  // Packing pays where one batch may take every core (the core budget) and a worker stays free
  // for long prompts: measured on 2 cores (bench/README.md "Default sizing"); elsewhere spread.
  const packs = cores <= 2 && decodePoolSize >= 2 && prefillPoolSize === 0;
  const placement = sch.placement === 'auto' ? (packs ? 'pack' : 'spread') : (sch.placement as 'pack' | 'spread');
  const explicitThreads = threadsSet || decodeSet || prefillPoolSize > 0;
  const used = models.length * workersPerModel * threadsPerWorker;
  if (explicitThreads && used > cores) {
    // llama.cpp threads spin-wait; oversubscribing cores made decode ~100x slower on small machines.
    throw new ConfigError(
      'runtime.threads_per_worker',
      `${models.length} model(s) x (${decodePoolSize} decode + ${prefillPoolSize} prefill) worker(s) x ${threadsPerWorker} thread(s) = ${used} llama.cpp threads > ${cores} cores ` +
        `(threads_per_worker ${threadsSet ? `from ${sourceOf(prov, ['runtime', 'threads_per_worker'])}` : 'auto'}, ` +
        `decode_pool_size ${decodeSet ? `from ${sourceOf(prov, ['scheduler', 'decode_pool_size'])}` : 'auto'}); ` +
        'lower them or raise runtime.cores',
    );
  }

  return {
    server: {
      host: s.host as string,
      port: s.port as number,
      maxBodyBytes: s.max_body_bytes as number,
      maxHeaderBytes: s.max_header_bytes as number,
      allowedHosts: resolveAllowedHosts(s.allowed_hosts as string[] | 'auto', s.host as string),
      idleTimeoutSeconds: s.idle_timeout_seconds as number,
      sseHeartbeatSeconds: s.sse_heartbeat_seconds as number,
      sseMaxBufferedBytes: s.sse_max_buffered_bytes as number,
      modelsDir: resolveModelsDir(s.models_dir as string, cwd, env),
      adminLoadDir: s.admin_load_dir === '' ? '' : path.resolve(cwd, s.admin_load_dir as string),
      modelsStatePath: s.models_state_path === '' ? '' : path.resolve(cwd, s.models_state_path as string),
      logLevel: s.log_level as LogLevel,
      logFormat: s.log_format as LogFormat,
      logToolCalls: s.log_tool_calls as boolean,
      logSampling: { rate: (s.log_sampling as Raw).rate as number, tenants: { ...((s.log_sampling as Raw).tenants as Record<string, number>) } },
      ...resolveServerEdges(s, cwd, from),
      grpc: { enabled: (s.grpc as Raw).enabled as boolean, port: (s.grpc as Raw).port as number },
    },
    models,
    runtime: {
      threadsPerWorker,
      // Packed, one worker carries the whole batch, so it needs room for it: 16, so that 16 streams
      // decode as one batch on every core rather than two batches of 8 on one core each (bench/
      // README.md "Sixteen sequences per packed worker"). Lowered at start to fit memory.
      sequencesPerWorker: autoOr(r.sequences_per_worker, placement === 'pack' ? 16 : 4),
      sequencesAuto: r.sequences_per_worker === 'auto',
      contextSize: r.context_size as number,
      batchSize: r.batch_size as number,
      prefillChunk: r.prefill_chunk as number,
      prefillChunkDecoding: r.prefill_chunk_decoding as number,
      prefillSpreadTokens: r.prefill_spread_tokens as number,
      cores,
      threadpool: r.threadpool as 'auto' | 'persistent' | 'per_step',
      threadpoolPoll: r.threadpool_poll as number,
      flashAttention: r.flash_attention as 'auto' | 'on' | 'off',
      mpsLayers: r.mps_layers === 'auto' ? 'max' : (r.mps_layers as number),
      backendPriority,
      fairness: {
        enablePreemption: (r.fairness as Raw).enable_preemption as boolean,
        highPriorityThreshold: (r.fairness as Raw).high_priority_threshold as number,
        maxTimesliceTokens: (r.fairness as Raw).max_timeslice_tokens as number,
      },
      pagedKv: {
        cpuPages: (r.paged_kv as Raw).cpu_pages as number,
        eviction: (r.paged_kv as Raw).eviction as 'lru' | 'clock',
      },
      nvmeOffload: {
        path: (r.nvme_offload as Raw).path === '' ? '' : path.resolve(cwd, (r.nvme_offload as Raw).path as string),
        workers: (r.nvme_offload as Raw).workers as number,
        queueDepth: (r.nvme_offload as Raw).queue_depth as number,
      },
      cacheIsolation: r.cache_isolation as 'shared' | 'tenant',
      responseCache: {
        enabled: (r.response_cache as Raw).enabled as boolean,
        maxEntries: (r.response_cache as Raw).max_entries as number,
        maxBytes: (r.response_cache as Raw).max_bytes as number,
      },
      memoryBudgetBytes: autoOr(r.memory_budget_bytes, machineMemory()),
      embeddings: {
        workers: (r.embeddings as Raw).workers as number,
        threads: (r.embeddings as Raw).threads as number,
        contextSize: autoOr((r.embeddings as Raw).context_size, r.context_size as number),
        batchMax: (r.embeddings as Raw).batch_max as number,
        maxQueue: (r.embeddings as Raw).max_queue as number,
      },
      speculativeDecoding: resolveSpeculative(r.speculative_decoding as Raw, cwd),
    },
    scheduler: {
      decodePoolSize,
      prefillPoolSize,
      kvRingBytes: sch.kv_ring_bytes as number,
      maxQueue: sch.max_queue as number,
      isolatePromptTokens: sch.isolate_prompt_tokens as number,
      placement,
      tokenizerWorkers: sch.tokenizer_workers as number,
    },
    limits: {
      maxTokens: lim.max_tokens as number,
      maxN: lim.max_n as number,
      maxStop: lim.max_stop as number,
      maxConcurrentRequestsPerKey: lim.max_concurrent_requests_per_key as number,
    },
    audit: { path: path.resolve(cwd, aud.path as string), debugMode: aud.debug_mode as boolean, flushIntervalMs: aud.flush_interval_ms as number },
    guardrails: resolveGuardrails(raw.guardrails as Raw),
    policy: {
      storePath: path.resolve(cwd, pol.store_path as string),
      watchIntervalSeconds: pol.watch_interval_seconds as number,
      redisUrl: pol.redis_url as string,
      redisKey: pol.redis_key as string,
    },
    auth: resolveAuth(raw.auth as Raw, env, from),
    rateLimit: resolveRateLimit(raw.rate_limit as Raw),
    rateLimitBackend: resolveRateLimitBackend(raw.rate_limit as Raw),
    pull: resolvePull(raw.pull as Raw, env),
    telemetry: { otlpEndpoint: ((raw.telemetry as Raw).otlp_endpoint as string).trim() },
    source,
  };
}

/** `server.models_dir`, or the user's cache directory (env-paths: XDG on Linux, the OS's elsewhere). */
function resolveModelsDir(configured: string, cwd: string, env: NodeJS.ProcessEnv): string {
  if (configured.trim() !== '') return path.resolve(cwd, configured);
  // env-paths reads XDG_CACHE_HOME from process.env; honour the env given to loadConfig too.
  const xdg = env.XDG_CACHE_HOME;
  if (process.platform === 'linux' && xdg && path.isAbsolute(xdg)) return path.join(xdg, 'inferflux', 'models');
  return path.join(envPaths('inferflux', { suffix: '' }).cache, 'models');
}

/**
 * Only the URL's shape is checked here: whether its host may be reached (public, or on
 * allowed_private_hosts; http only there) is decided when a pull connects, with the address in hand.
 */
function resolvePull(p: Raw, env: NodeJS.ProcessEnv): PullConfig {
  let hub: URL;
  try {
    hub = new URL(p.hub_url as string);
  } catch {
    throw new ConfigError('pull.hub_url', `must be an http(s):// URL, got ${JSON.stringify(p.hub_url)}`);
  }
  if ((hub.protocol !== 'https:' && hub.protocol !== 'http:') || hub.username || hub.password || hub.search || hub.hash) {
    throw new ConfigError('pull.hub_url', `must be an http(s):// URL without credentials, query or fragment, got ${JSON.stringify(p.hub_url)}`);
  }
  // A secret: from the environment only (as the Hugging Face tools read it), never a file key.
  const token = (env.HF_TOKEN ?? '').trim();
  return { hubUrl: hub.href.replace(/\/+$/, ''), allowedPrivateHosts: p.allowed_private_hosts as string[], hubToken: token === '' ? null : token };
}

/** runtime.speculative_decoding: a draft model is required when it is on; its path is resolved like the others. */
function resolveSpeculative(sd: Raw, cwd: string): RuntimeConfig['speculativeDecoding'] {
  const enabled = sd.enabled as boolean;
  const draft = sd.draft_model as string;
  if (enabled && draft === '') {
    throw new ConfigError('runtime.speculative_decoding.draft_model', 'is required when speculative decoding is enabled (INFERFLUX_SPEC_DRAFT_MODEL)');
  }
  return {
    enabled,
    draftModel: draft === '' ? '' : path.resolve(cwd, draft),
    maxPrefillTokens: sd.max_prefill_tokens as number,
    chunkSize: sd.chunk_size as number,
  };
}
