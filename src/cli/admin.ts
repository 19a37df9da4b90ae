/**
 * `inferctl admin ...`: thin commands over the server's ops and admin API.
 * Flags become exactly one admin request body (snake_case, as on the wire), so the server's own
 * validation answers a bad value; each command prints the server's JSON view after the change.
 */
import { CliError, numberFlag, requestJson, type Connection } from './client.js';
import type { Output } from './generate.js';

const print = (io: Output, v: unknown): void => io.out(`${JSON.stringify(v, null, 2)}\n`);

const count = (name: string, v: string | undefined): number | undefined => numberFlag(name, v, { integer: true, min: 0 });

/** `a, b,c` -> ['a', 'b', 'c']; `''` -> []. */
export function listFlag(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface GuardrailFlags {
  list?: boolean;
  set?: string;
  pii?: string;
  piiKinds?: string;
  piiOutput?: string;
  opaEndpoint?: string;
  opaTimeoutMs?: string;
  opaFailMode?: string;
}

export async function runGuardrails(c: Connection, f: GuardrailFlags, io: Output): Promise<void> {
  const pii = defined({
    action: f.pii,
    kinds: f.piiKinds === undefined ? undefined : listFlag(f.piiKinds),
    output: f.piiOutput === undefined ? undefined : onOff('pii-output', f.piiOutput),
  });
  const body = defined({
    blocklist: f.set === undefined ? undefined : listFlag(f.set),
    pii: Object.keys(pii).length > 0 ? pii : undefined,
    opa_endpoint: f.opaEndpoint,
    opa_timeout_ms: count('opa-timeout-ms', f.opaTimeoutMs),
    opa_fail_mode: f.opaFailMode,
  });
  if (Object.keys(body).length === 0) return print(io, (await requestJson(c, 'GET', '/v1/admin/guardrails')).body);
  print(io, (await requestJson(c, 'PUT', '/v1/admin/guardrails', body)).body);
}

function onOff(name: string, v: string): boolean {
  if (/^(on|true|yes|1)$/i.test(v)) return true;
  if (/^(off|false|no|0)$/i.test(v)) return false;
  throw new CliError(`--${name} must be on or off, got ${v}`, 2);
}

export interface RateLimitFlags {
  list?: boolean;
  set?: string;
  tokensPerMinute?: string;
  tenantRequestsPerMinute?: string;
  tenantTokensPerMinute?: string;
}

export async function runRateLimit(c: Connection, f: RateLimitFlags, io: Output): Promise<void> {
  const body = defined({
    requests_per_minute: count('set', f.set),
    tokens_per_minute: count('tokens-per-minute', f.tokensPerMinute),
    tenant_requests_per_minute: count('tenant-requests-per-minute', f.tenantRequestsPerMinute),
    tenant_tokens_per_minute: count('tenant-tokens-per-minute', f.tenantTokensPerMinute),
  });
  if (Object.keys(body).length === 0) return print(io, (await requestJson(c, 'GET', '/v1/admin/rate_limit')).body);
  print(io, (await requestJson(c, 'PUT', '/v1/admin/rate_limit', body)).body);
}

export interface ApiKeyFlags {
  list?: boolean;
  /** `--add [label]`: true without a label. */
  add?: string | boolean;
  scopes?: string;
  tenant?: string;
  priority?: string;
  remove?: string;
  /** `--key SECRET` / `--key-sha256 HEX`: register this key instead of having one generated. */
  key?: string;
  keySha256?: string;
}

export async function runApiKeys(c: Connection, f: ApiKeyFlags, io: Output): Promise<void> {
  if (f.add !== undefined && f.remove !== undefined) throw new CliError('--add and --remove cannot be combined', 2);
  if (f.add !== undefined) {
    if (f.scopes === undefined) throw new CliError('--add needs --scopes, e.g. --scopes generate,read', 2);
    const priority = numberFlag('priority', f.priority, { integer: true });
    const body = defined({ scopes: listFlag(f.scopes), tenant: f.tenant, priority, label: typeof f.add === 'string' ? f.add : undefined, key: f.key, key_sha256: f.keySha256 });
    const created = (await requestJson<{ key?: string; id: string }>(c, 'POST', '/v1/admin/api_keys', body)).body;
    print(io, created);
    io.err(created.key === undefined ? `registered the given key as ${created.id}\n` : `the key is shown once: store it now (id ${created.id})\n`);
    return;
  }
  if (f.key !== undefined || f.keySha256 !== undefined) throw new CliError('--key and --key-sha256 go with --add', 2);
  if (f.remove !== undefined) {
    print(io, (await requestJson(c, 'DELETE', `/v1/admin/api_keys/${encodeURIComponent(f.remove)}`)).body);
    return;
  }
  print(io, (await requestJson(c, 'GET', '/v1/admin/api_keys')).body);
}

export interface CacheFlags {
  list?: boolean;
  flush?: boolean;
  warm?: string;
  model?: string;
}

export async function runCache(c: Connection, f: CacheFlags, io: Output): Promise<void> {
  if (f.flush && f.warm !== undefined) throw new CliError('--flush and --warm cannot be combined', 2);
  if (f.flush) return print(io, (await requestJson(c, 'POST', '/v1/admin/cache', { action: 'flush' })).body);
  if (f.warm !== undefined) return print(io, (await requestJson(c, 'POST', '/v1/admin/cache', defined({ action: 'warm', prompt: f.warm, model: f.model }))).body);
  print(io, (await requestJson(c, 'GET', '/v1/admin/cache')).body);
}

export interface FairnessFlags {
  list?: boolean;
  preemption?: string;
  highPriorityThreshold?: string;
  maxTimesliceTokens?: string;
}

export async function runFairness(c: Connection, f: FairnessFlags, io: Output): Promise<void> {
  const threshold = numberFlag('high-priority-threshold', f.highPriorityThreshold, { integer: true });
  const body = defined({
    enable_preemption: f.preemption === undefined ? undefined : onOff('preemption', f.preemption),
    high_priority_threshold: threshold,
    max_timeslice_tokens: count('max-timeslice-tokens', f.maxTimesliceTokens),
  });
  if (Object.keys(body).length === 0) return print(io, (await requestJson(c, 'GET', '/v1/admin/fairness')).body);
  print(io, (await requestJson(c, 'PUT', '/v1/admin/fairness', body)).body);
}

/** `/debug` (token traces, engines, adapters), or one request's whole trace. */
export async function runDebug(c: Connection, f: { trace?: string }, io: Output): Promise<void> {
  const path = f.trace === undefined ? '/debug' : `/debug/traces/${encodeURIComponent(f.trace)}`;
  print(io, (await requestJson(c, 'GET', path)).body);
}

export interface ModelFlags {
  list?: boolean;
  load?: string;
  id?: string;
  default?: boolean;
  unload?: string;
  setDefault?: string;
}

/**
 * What `--load X` names: a file when it looks like one (ends in `.gguf`, or starts with `/`, `.`
 * or `~`), else a pulled model's name (`owner/repo:quant`, as `inferctl models list --local` shows).
 */
export function loadTarget(x: string): { path: string } | { model: string } {
  return /\.gguf$/i.test(x) || /^[/.~]/.test(x) || x.includes('\\') ? { path: x } : { model: x };
}

/** `inferctl admin models`: list (no flags), --load PATH|NAME [--id ID] [--default], --unload ID, --set-default ID. */
export async function runModels(c: Connection, f: ModelFlags, io: Output): Promise<void> {
  const actions = [f.load, f.unload, f.setDefault].filter((a) => a !== undefined).length;
  if (actions > 1) throw new CliError('--load, --unload and --set-default cannot be combined', 2);
  if (f.load === undefined && (f.id !== undefined || f.default)) throw new CliError('--id and --default go with --load PATH|NAME', 2);
  if (f.load !== undefined) {
    const target = loadTarget(f.load);
    if (f.id === undefined && 'path' in target) throw new CliError('--load PATH needs --id, the name clients will send as "model" (a pulled model\'s name needs none)', 2);
    io.err(`loading ${'path' in target ? f.load : `pulled model ${f.load}`} as ${f.id ?? f.load} (returns once it serves)\n`);
    return print(io, (await requestJson(c, 'POST', '/v1/admin/models', defined({ id: f.id, ...target, default: f.default ? true : undefined }))).body);
  }
  if (f.unload !== undefined) {
    io.err(`unloading ${f.unload}: running requests finish first\n`);
    return print(io, (await requestJson(c, 'DELETE', `/v1/admin/models/${encodeURIComponent(f.unload)}`)).body);
  }
  if (f.setDefault !== undefined) return print(io, (await requestJson(c, 'POST', `/v1/admin/models/${encodeURIComponent(f.setDefault)}/default`)).body);
  print(io, (await requestJson(c, 'GET', '/v1/admin/models')).body);
}

export interface AdapterFlags {
  list?: boolean;
  load?: string;
  model?: string;
  id?: string;
  scale?: string;
  unload?: string;
}

/** `inferctl admin adapters`: list (no flags), --load PATH --model BASE --id ID [--scale S], --unload ID. */
export async function runAdapters(c: Connection, f: AdapterFlags, io: Output): Promise<void> {
  if (f.load !== undefined && f.unload !== undefined) throw new CliError('--load and --unload cannot be combined', 2);
  if (f.load === undefined && (f.model !== undefined || f.id !== undefined || f.scale !== undefined)) throw new CliError('--model, --id and --scale go with --load PATH', 2);
  if (f.load !== undefined) {
    if (f.model === undefined) throw new CliError('--load needs --model, the base model the adapter was trained for (inferctl admin models --list)', 2);
    if (f.id === undefined) throw new CliError('--load needs --id; requests then send "model": "BASE:ID" or "adapter": "ID"', 2);
    const scale = numberFlag('scale', f.scale);
    io.err(`loading adapter ${f.load} as ${f.model}:${f.id} (returns once every worker holds it)\n`);
    return print(io, (await requestJson(c, 'POST', '/v1/admin/adapters', defined({ model: f.model, id: f.id, path: f.load, scale }))).body);
  }
  if (f.unload !== undefined) {
    io.err(`unloading adapter ${f.unload}: running requests finish first\n`);
    return print(io, (await requestJson(c, 'DELETE', `/v1/admin/adapters/${encodeURIComponent(f.unload)}`)).body);
  }
  print(io, (await requestJson(c, 'GET', '/v1/admin/adapters')).body);
}
