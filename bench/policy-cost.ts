/**
 * `npm run bench:policy`: what the whole policy layer costs (issue 4 item 9), measured in one run:
 * real servers with the layer off and on, the same model file, the same sizing, loopback only.
 *
 *   off      auth.enabled=false (explicit), rate limits 0 (unlimited), no blocklist, PII off,
 *            plaintext policy store path (never written). Audit stays on: it cannot be turned off.
 *   on       API keys (Bearer; 20 more hashed keys in the registry), rate limits of 1e9 per minute
 *            per key and tenant (every request runs the token buckets, none is ever refused),
 *            53-term blocklist + PII redact (all detectors) on prompts and streamed output,
 *            AES-256-GCM policy store (INFERFLUX_POLICY_PASSPHRASE; written through the admin API
 *            in phase A, decrypted at start in phase B), audit on (auth + completion lines).
 *   on-redis phase A only: `on` with the rate limits shared through a redis-server this bench
 *            starts on loopback (`rate_limit.redis_url`): one Lua script round trip per request.
 *            BENCH_POLICY_REDIS=0 leaves it out (no redis-server needed).
 *   on-promptpii diagnostic, phase B only: `on` with `guardrails.pii.output: false` (PII redacted
 *            in prompts only), to attribute TTFT to the PII output hold-back (a stream holds
 *            back the word being written and any number that may still become a phone or card,
 *            until the next characters decide).
 *
 * Phase A, tiny model (models/demo.gguf): a fast model makes per-request overhead visible.
 *   1. `GET /v1/models` (runs authenticate, authorize, rateLimit; no model work), 2000 sequential
 *      keep-alive requests per side per repetition, alternating the side request by request (so
 *      a slow phase of a shared machine hits both; the paired differences are reported too).
 *   2. `POST /v1/completions`, `max_tokens: 1`, not streamed (adds the guardrail prompt check and
 *      the completion audit line), 300 per side per repetition, alternating the same way.
 * Phase B, bench model (models/bench.gguf, SmolLM-135M shape): TTFT and tok/s at realistic cost.
 *   3. c=1: the same prompt to every side back to back (rotating which goes first), 10 per rep.
 *      Greedy, as the targets are defined; the random-weight model then mostly loops on one token,
 *      often without a space (`kdgkdgkdg...`): a worst case for the word hold-back, since a run of
 *      letters may be an email's local part until it passes 64 characters. So c=1 is measured
 *      once more with sampling (temperature 0.8, one seed per prompt, so every side gets the same
 *      text), where words are 1-3 tokens as in prose; BENCH_POLICY_SAMPLED=0 leaves it out.
 *   4. c=4: 4 clients x 2 requests on one side, then the next (rotating the first side).
 * Every server stays up during its phase, but only one is under load at a time (the idle ones'
 * CPU time is printed as a check). Each phase's servers get SIGTERM at its end.
 *
 * Loops are bounded in count and in time (BENCH_POLICY_TIMEOUT_S overall, per-request timeouts).
 * Exit code 0 when the measurement completed, whatever the verdicts; 1 on a failure or an error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureModel } from '../src/runtime/gguf/generate.js';
import { KeepAliveClient, streamTimed, type StreamResult } from './policy-client.js';
import { cpuSeconds, startServer, stopServer, type ServerProcess } from './server-process.js';
import { randomWords, runBench } from './server.js';
import { startRedis } from '../test/helpers/redis.js';
import { auditCounts, f1, f2, f3, us, reportLevel, reportRoundTrips, say, type LevelReport, type RoundTripReport, type SideName, type StreamRun } from './policy-report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPEATS = positiveInt(process.env.BENCH_REPEATS, 3);
const DEADLINE = Date.now() + positiveInt(process.env.BENCH_POLICY_TIMEOUT_S, 1200) * 1000;
const DIAGNOSTIC = process.env.BENCH_POLICY_DIAG !== '0';
const WITH_REDIS = process.env.BENCH_POLICY_REDIS !== '0';
const SAMPLED = process.env.BENCH_POLICY_SAMPLED !== '0';
const SAMPLING_TEMPERATURE = 0.8;
const MODELS_N = 2000;
const MODELS_BLOCK = 1;
const ONE_TOKEN_N = 300;
const ONE_TOKEN_BLOCK = 1;
const C1_PER_REP = 10;
const C4 = { clients: 4, requestsPerClient: 2 };
const MAX_TOKENS = 64;
const ROUND_TRIP_TIMEOUT_MS = 10_000;
const STREAM_TIMEOUT_MS = 120_000;
const TTFT_P95_TARGET = 1.05;
const OVERHEAD_TARGET_MS = 1;

const GEN_KEY = 'ifx-bench-generate-key-0001';
const ADMIN_KEY = 'ifx-bench-admin-key-0001';
const PASSPHRASE = randomBytes(24).toString('hex');
const HUGE = 1_000_000_000; // the schema's maximum per minute: enforced, never reached
const BLOCKLIST = [...Array.from({ length: 45 }, (_, i) => `blockedterm${i}`), 'classified', 'top secret', 'launch codes', 'confidential*', 'internal only', 'exfiltrate', 'jailbreak', 'password dump'];

interface Side {
  name: SideName;
  server: ServerProcess;
  headers: Record<string, string>;
  dir: string;
}

function positiveInt(v: string | undefined, fallback: number): number {
  const n = v === undefined ? Number.NaN : Number(v);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

const checkTime = (what: string): void => {
  if (Date.now() > DEADLINE) throw new Error(`time cap reached during ${what} (BENCH_POLICY_TIMEOUT_S)`);
};

// ---- prompts -----------------------------------------------------------------------------------

/** Unique lowercase pseudo-word prompts per seed: no prefix reuse, no PII, no blocked term. */
const PROMPT_WORDS = 66; // ~128 bench-model tokens

// ---- configuration -----------------------------------------------------------------------------

/** The YAML file for one side (JSON is YAML); env carries the rest. */
function sideConfig(name: SideName, dir: string, storeDir: string, redisUrl: string): { yaml: object; env: Record<string, string> } {
  const audit = { path: path.join(dir, 'audit.log') };
  if (name === 'off') {
    return {
      yaml: {
        auth: { enabled: false },
        rate_limit: { requests_per_minute: 0, tokens_per_minute: 0, tenant_requests_per_minute: 0, tenant_tokens_per_minute: 0 },
        guardrails: { blocklist: [], pii: { action: 'off' }, opa_endpoint: '' },
        policy: { store_path: path.join(dir, 'policy_store.conf') },
        audit,
      },
      env: {},
    };
  }
  const others = Array.from({ length: 20 }, (_, i) => ({
    key_sha256: createHash('sha256').update(`other-tenant-key-${i}`).digest('hex'),
    scopes: ['generate', 'read'],
    tenant: `tenant-${i}`,
  }));
  return {
    yaml: {
      auth: { enabled: true, api_keys: others },
      rate_limit: {
        requests_per_minute: HUGE,
        tokens_per_minute: HUGE,
        tenant_requests_per_minute: HUGE,
        tenant_tokens_per_minute: HUGE,
        ...(name === 'on-redis' ? { redis_url: redisUrl, redis_prefix: `bench${process.pid}:` } : {}),
      },
      guardrails: { blocklist: BLOCKLIST, pii: { action: 'redact', kinds: ['email', 'phone', 'credit_card', 'iban', 'secret'], output: name !== 'on-promptpii' }, opa_endpoint: '' },
      // Both "on" sides share one encrypted store, like replicas would.
      policy: { store_path: path.join(storeDir, 'policy_store.conf') },
      audit,
    },
    env: { INFERFLUX_API_KEYS: `${GEN_KEY}:generate|read@bench,${ADMIN_KEY}:admin@ops`, INFERFLUX_POLICY_PASSPHRASE: PASSPHRASE },
  };
}

/** This process's env minus anything that would change either side's policy or model. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const owned = /^INFERFLUX_(API_KEYS|AUTH_|RATE_LIMIT|GUARDRAIL_|POLICY_|AUDIT_|OIDC_|TLS_|CONFIG|MODELS?$|MODEL_PATH|HOST|PORT)/;
  for (const k of Object.keys(env)) if (owned.test(k) || k === 'INFERCTL_API_KEY') delete env[k];
  return env;
}

async function startSides(names: SideName[], modelPath: string, tmp: string, phase: string, redisUrl = ''): Promise<Side[]> {
  const sides: Side[] = [];
  const storeDir = path.join(tmp, 'store');
  mkdirSync(storeDir, { recursive: true });
  try {
    for (const name of names) {
      const dir = path.join(tmp, `${phase}-${name}`);
      mkdirSync(dir, { recursive: true });
      const c = sideConfig(name, dir, storeDir, redisUrl);
      const cfg = path.join(dir, 'server.yaml');
      writeFileSync(cfg, JSON.stringify(c.yaml, null, 2));
      const env = { ...baseEnv(), ...c.env, INFERFLUX_CONFIG: cfg, INFERFLUX_MODEL_PATH: modelPath, INFERFLUX_HOST: '127.0.0.1', INFERFLUX_PORT: '0' };
      const t0 = Date.now();
      const server = await startServer({ root: ROOT, name: `${phase}/${name}`, env, timeoutMs: 120_000 });
      sides.push({ name, server, dir, headers: name === 'off' ? {} : { authorization: `Bearer ${GEN_KEY}` } });
      const pick = (re: RegExp) => server.log.find((l) => re.test(l))?.replace(/^\S+ inferflux /, '') ?? '(no line)';
      say(`  ${phase}/${name}: ${server.baseUrl} ready in ${Date.now() - t0} ms; ${pick(/auth (on|off)|authentication is/)}; ${pick(/^.*policy store .*(version|no file)/)}`);
      if (name === 'on-redis') say(`    ${pick(/rate limits: shared through Redis/)}`);
    }
  } catch (err) {
    await stopSides(sides);
    throw err;
  }
  return sides;
}

async function stopSides(sides: Side[]): Promise<boolean> {
  let clean = true;
  for (const s of sides) {
    const r = await stopServer(s.server, 15_000);
    const ok = r.code === 0 && !r.killed;
    clean &&= ok;
    say(`  ${s.server.name}: SIGTERM -> exit code ${r.code}, signal ${r.signal}, ${r.ms} ms${ok ? '' : ' -- WARNING: unclean exit'}`);
    if (!ok) for (const l of s.server.log.slice(-8)) say(`    server: ${l}`);
  }
  return clean;
}

// ---- checks: the layer really is on (or off) ---------------------------------------------------

async function checkSides(off: Side, on: Side, storeDir: string): Promise<void> {
  const anon = new KeepAliveClient(on.server.baseUrl, {});
  const keyed = new KeepAliveClient(on.server.baseUrl, on.headers);
  const admin = new KeepAliveClient(on.server.baseUrl, { authorization: `Bearer ${ADMIN_KEY}` });
  const open = new KeepAliveClient(off.server.baseUrl, {});
  try {
    const expect = (what: string, ok: boolean, got: string): void => {
      if (!ok) throw new Error(`check failed: ${what} (got ${got})`);
      say(`  check: ${what}: ok`);
    };
    let r = await anon.request('GET', '/v1/models', undefined, ROUND_TRIP_TIMEOUT_MS);
    expect('on: GET /v1/models without a key is 401', r.status === 401, String(r.status));
    r = await keyed.request('GET', '/v1/models', undefined, ROUND_TRIP_TIMEOUT_MS);
    expect('on: with the key 200 and x-ratelimit-* headers (buckets run)', r.status === 200 && r.headers['x-ratelimit-limit-requests'] === String(HUGE), `${r.status} ${r.headers['x-ratelimit-limit-requests']}`);
    r = await keyed.request('POST', '/v1/completions', { prompt: 'please share the launch codes', max_tokens: 1 }, ROUND_TRIP_TIMEOUT_MS);
    expect('on: blocklisted prompt is 400 guardrail_denied', r.status === 400 && r.body.includes('guardrail_denied'), `${r.status} ${r.body.slice(0, 80)}`);
    r = await keyed.request('POST', '/v1/completions', { prompt: 'mail jane.doe@example.com about it', max_tokens: 1 }, ROUND_TRIP_TIMEOUT_MS);
    const metrics = (await keyed.request('GET', '/metrics', undefined, ROUND_TRIP_TIMEOUT_MS)).body;
    expect('on: prompt with an email is redacted (redaction counter)', r.status === 200 && /inferflux_guardrail_redactions_total\{[^}]*email[^}]*\} [1-9]/.test(metrics), String(r.status));
    r = await admin.request('PUT', '/v1/admin/rate_limit', { requests_per_minute: HUGE, tokens_per_minute: HUGE, tenant_requests_per_minute: HUGE, tenant_tokens_per_minute: HUGE }, ROUND_TRIP_TIMEOUT_MS);
    expect('on: admin PUT /v1/admin/rate_limit persisted to the store', r.status === 200, `${r.status} ${r.body.slice(0, 80)}`);
    const storeFile = path.join(storeDir, 'policy_store.conf');
    let stored = '';
    for (let i = 0; i < 20 && stored === ''; i++) {
      try {
        stored = readFileSync(storeFile, 'utf8');
      } catch {
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    const cipher = (JSON.parse(stored || '{}') as { cipher?: string }).cipher;
    const leaks = [GEN_KEY, ADMIN_KEY, PASSPHRASE].filter((x) => stored.includes(x)).length;
    expect('on: policy store is aes-256-gcm, holds no key or passphrase', cipher === 'aes-256-gcm' && leaks === 0, `cipher ${cipher}, ${leaks} secret(s) in it`);
    r = await open.request('GET', '/v1/models', undefined, ROUND_TRIP_TIMEOUT_MS);
    expect('off: GET /v1/models without a key is 200, no x-ratelimit-*', r.status === 200 && r.headers['x-ratelimit-limit-requests'] === undefined, String(r.status));
  } finally {
    for (const c of [anon, keyed, admin, open]) c.close();
  }
}

// ---- measurement -------------------------------------------------------------------------------

type Req = { method: 'GET' | 'POST'; path: string; body?: unknown };

/** `perSide` sequential keep-alive round trips per side, in blocks of `block`, rotating which side goes first. */
async function interleaved(sides: Side[], perSide: number, block: number, req: (i: number) => Req, what: string): Promise<Map<SideName, number[]>> {
  const clients = sides.map((s) => new KeepAliveClient(s.server.baseUrl, s.headers));
  const times = new Map(sides.map((s) => [s.name, [] as number[]]));
  try {
    for (let b = 0; b * block < perSide; b++) {
      checkTime(what);
      for (let k = 0; k < sides.length; k++) {
        const j = (b + k) % sides.length;
        for (let i = b * block; i < Math.min(perSide, (b + 1) * block); i++) {
          const q = req(i);
          const r = await clients[j]!.request(q.method, q.path, q.body, ROUND_TRIP_TIMEOUT_MS);
          if (r.status !== 200) throw new Error(`${what} on ${sides[j]!.name}: HTTP ${r.status} ${r.body.slice(0, 160)}`);
          times.get(sides[j]!.name)!.push(r.ms);
        }
      }
    }
  } finally {
    for (const c of clients) c.close();
  }
  return times;
}

/** CPU seconds of every server but `busy`: what the idle ones used while `busy` was measured. */
function idleCpu(sides: Side[], busy: Side): number {
  return sides.filter((s) => s !== busy).reduce((a, s) => a + cpuSeconds(s.server.child.pid), 0);
}

interface IdleTally {
  cpuS: number;
  wallS: number;
}

async function measured<T>(sides: Side[], busy: Side, idle: IdleTally, run: () => Promise<T>): Promise<T> {
  const c0 = idleCpu(sides, busy);
  const t0 = Date.now();
  const out = await run();
  idle.cpuS += idleCpu(sides, busy) - c0;
  idle.wallS += (Date.now() - t0) / 1000;
  return out;
}

/** `clients` closed-loop streaming clients on one side; each request bounded by the level's cap. */
async function streamLevel(side: Side, prompts: string[][], requestsPerClient: number): Promise<StreamRun> {
  const signal = AbortSignal.timeout(STREAM_TIMEOUT_MS);
  const t0 = performance.now();
  const per = await Promise.all(
    prompts.map(async (ps) => {
      const out: StreamResult[] = [];
      for (let i = 0; i < requestsPerClient && !signal.aborted; i++) out.push(await streamTimed(side.server.baseUrl, side.headers, ps[i]!, MAX_TOKENS, signal));
      return out;
    }),
  );
  const requests = per.flat();
  return { wallMs: requests.reduce((m, r) => Math.max(m, r.endMs), t0) - t0, requests };
}


// ---- main --------------------------------------------------------------------------------------

async function phaseA(tmp: string, modelPath: string): Promise<{ models: RoundTripReport; oneToken: RoundTripReport }> {
  const redis = WITH_REDIS ? await startRedis() : undefined;
  const names: SideName[] = redis ? ['off', 'on', 'on-redis'] : ['off', 'on'];
  say('');
  say(`phase A: ${path.relative(ROOT, modelPath)} (tiny), sides ${names.join(', ')}${redis ? ` (redis-server ${redis.url})` : ''}`);
  let sides: Side[] = [];
  let clean = false;
  try {
    sides = await startSides(names, modelPath, tmp, 'A', redis?.url);
    await checkSides(sides[0]!, sides[1]!, path.join(tmp, 'store'));
    const completion = (rep: number) => (i: number): Req => ({ method: 'POST', path: '/v1/completions', body: { prompt: randomWords(100_000 * (rep + 1) + i, 60), max_tokens: 1, temperature: 0 } });
    // Warm-up: JIT, sockets, every engine worker.
    await interleaved(sides, 200, 50, () => ({ method: 'GET', path: '/v1/models' }), 'warm-up');
    await interleaved(sides, 20, 5, completion(99), 'warm-up');
    const models: Map<SideName, number[]>[] = [];
    const oneToken: Map<SideName, number[]>[] = [];
    for (let rep = 0; rep < REPEATS; rep++) {
      const t0 = Date.now();
      models.push(await interleaved(sides, MODELS_N, MODELS_BLOCK, () => ({ method: 'GET', path: '/v1/models' }), 'GET /v1/models'));
      oneToken.push(await interleaved(sides, ONE_TOKEN_N, ONE_TOKEN_BLOCK, completion(rep), 'max_tokens 1'));
      say(`  rep ${rep + 1}: ${MODELS_N} x GET /v1/models + ${ONE_TOKEN_N} x max_tokens=1 per side in ${Date.now() - t0} ms`);
    }
    const m = reportRoundTrips(`GET /v1/models, sequential keep-alive round trips (${REPEATS} x ${MODELS_N} per side, alternating every ${MODELS_BLOCK})`, models, names);
    const o = reportRoundTrips(`POST /v1/completions max_tokens=1, not streamed, ~60-word prompt (${REPEATS} x ${ONE_TOKEN_N} per side, alternating every ${ONE_TOKEN_BLOCK})`, oneToken, names);
    return { models: m, oneToken: o };
  } finally {
    say('');
    clean = await stopSides(sides);
    await redis?.stop();
    if (!clean) throw new Error('phase A: a server did not stop cleanly');
  }
}

async function phaseB(tmp: string, modelPath: string): Promise<{ c1: LevelReport; c1Sampled: LevelReport | undefined; c4: LevelReport; idle: IdleTally }> {
  const names: SideName[] = DIAGNOSTIC ? ['off', 'on', 'on-promptpii'] : ['off', 'on'];
  say('');
  say(`phase B: ${path.relative(ROOT, modelPath)} (bench shape), sides ${names.join(', ')}; ${MAX_TOKENS} tokens per request, streamed, EOS ignored`);
  const sides = await startSides(names, modelPath, tmp, 'B');
  const idle: IdleTally = { cpuS: 0, wallS: 0 };
  try {
    for (const s of sides) {
      const warm = await Promise.all([0, 1].map((i) => streamTimed(s.server.baseUrl, s.headers, `warm up engine ${i} ${s.name}`, 8, AbortSignal.timeout(STREAM_TIMEOUT_MS))));
      for (const w of warm) if (!w.ok) throw new Error(`warm-up on ${s.name} failed: ${w.error}`);
    }
    const c1: Map<SideName, StreamRun>[] = [];
    const c1Sampled: Map<SideName, StreamRun>[] = [];
    const c4: Map<SideName, StreamRun>[] = [];
    /** C1_PER_REP prompts, each to every side back to back (rotating which side goes first). */
    const sequential = async (rep: number, seedBase: number, sampled: boolean): Promise<Map<SideName, StreamRun>> => {
      const runs = new Map<SideName, StreamRun>(names.map((n) => [n, { wallMs: 0, requests: [] }]));
      for (let i = 0; i < C1_PER_REP; i++) {
        checkTime('c=1');
        const seed = seedBase * (rep + 1) + i;
        const p = randomWords(seed, PROMPT_WORDS);
        const sampling = sampled ? { temperature: SAMPLING_TEMPERATURE, seed } : undefined;
        for (let k = 0; k < sides.length; k++) {
          const s = sides[(i + k) % sides.length]!;
          const r = await measured(sides, s, idle, () => streamTimed(s.server.baseUrl, s.headers, p, MAX_TOKENS, AbortSignal.timeout(STREAM_TIMEOUT_MS), sampling));
          runs.get(s.name)!.requests.push(r);
        }
      }
      return runs;
    };
    for (let rep = 0; rep < REPEATS; rep++) {
      const t0 = Date.now();
      const runs = await sequential(rep, 1_000_000, false);
      c1.push(runs);
      if (SAMPLED) c1Sampled.push(await sequential(rep, 3_000_000, true));
      const level = new Map<SideName, StreamRun>();
      const prompts = Array.from({ length: C4.clients }, (_, c) => Array.from({ length: C4.requestsPerClient }, (_, i) => randomWords(2_000_000 * (rep + 1) + 100 * c + i, PROMPT_WORDS)));
      for (let k = 0; k < sides.length; k++) {
        checkTime('c=4');
        const s = sides[(rep + k) % sides.length]!;
        level.set(s.name, await measured(sides, s, idle, () => streamLevel(s, prompts, C4.requestsPerClient)));
      }
      c4.push(level);
      const err = [...runs.values(), ...(c1Sampled[rep]?.values() ?? []), ...level.values()].reduce((a, r) => a + r.requests.filter((q) => !q.ok).length, 0);
      say(`  rep ${rep + 1}: c=1 ${C1_PER_REP} per side${SAMPLED ? ' (greedy and sampled)' : ''}, c=4 ${C4.clients}x${C4.requestsPerClient} per side, in ${Date.now() - t0} ms (${err} errors; first at c=4: ${sides[rep % sides.length]!.name})`);
    }
    return {
      c1: reportLevel(`c=1, ${REPEATS} x ${C1_PER_REP} per side, same prompt to every side back to back (TTFT ms; tok/s = tokens / summed request time)`, c1, names, true),
      c1Sampled: SAMPLED
        ? reportLevel(`c=1 sampled (temperature ${SAMPLING_TEMPERATURE}, seed per prompt, same text on every side), ${REPEATS} x ${C1_PER_REP} per side`, c1Sampled, names, true)
        : undefined,
      c4: reportLevel(`c=${C4.clients}, ${REPEATS} reps x ${C4.clients} clients x ${C4.requestsPerClient} requests per side (TTFT ms; tok/s = tokens / level wall time)`, c4, names, false),
      idle,
    };
  } finally {
    say('');
    const clean = await stopSides(sides);
    if (!clean) throw new Error('phase B: a server did not stop cleanly');
  }
}

async function main(): Promise<number> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'inferflux-policy-bench-'));
  const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
  say(`policy cost bench: ${REPEATS} repetition(s), node ${process.version}, loopback only; load average ${load()} at start; temp dir ${tmp}`);
  const tiny = path.join(ROOT, 'models', 'demo.gguf');
  const bench = path.join(ROOT, 'models', 'bench.gguf');
  let failed = false;
  try {
    const t = await ensureModel('tiny', tiny);
    const b = await ensureModel('bench', bench);
    say(`models: ${path.relative(ROOT, tiny)} (tiny, ${t.created ? 'generated now' : 'reused'}), ${path.relative(ROOT, bench)} (bench, ${b.created ? 'generated now' : 'reused'})`);
    const a = await phaseA(tmp, tiny);
    const bb = await phaseB(tmp, bench);
    say('');
    say('audit lines per side (servers stopped, so flushed):');
    for (const d of readdirSync(tmp).filter((x) => /^[AB]-/.test(x)).sort()) say(`  ${d}: ${auditCounts(path.join(tmp, d))}`);
    say(`load average at end: ${load()} (other processes on this machine add noise to every number)`);
    say(`idle servers used ${f2(bb.idle.cpuS)} CPU-s in total during ${f1(bb.idle.wallS)} s of phase B measurements on another server`);

    const ttft1 = bb.c1.ttftP95.get('on')! / bb.c1.ttftP95.get('off')!;
    const ttft4 = bb.c4.ttftP95.get('on')! / bb.c4.ttftP95.get('off')!;
    const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
    say('');
    say('targets (issue 4 item 9; no external policy call configured):');
    say(`  TTFT p95 on/off, bench model, c=1: ${f3(ttft1)} (target <= ${TTFT_P95_TARGET})  ${verdict(ttft1 <= TTFT_P95_TARGET)}`);
    say(`  TTFT p95 on/off, bench model, c=4: ${f3(ttft4)} (target <= ${TTFT_P95_TARGET})  ${verdict(ttft4 <= TTFT_P95_TARGET)}`);
    if (DIAGNOSTIC) {
      const d1 = bb.c1.ttftP95.get('on-promptpii')! / bb.c1.ttftP95.get('off')!;
      const d4 = bb.c4.ttftP95.get('on-promptpii')! / bb.c4.ttftP95.get('off')!;
      say(`    diagnostic, PII on prompts only (no PII output hold-back): c=1 ${f3(d1)}, c=4 ${f3(d4)}  ${verdict(d1 <= TTFT_P95_TARGET && d4 <= TTFT_P95_TARGET)}`);
    }
    if (bb.c1Sampled) {
      const s = bb.c1Sampled.ttftP95.get('on')! / bb.c1Sampled.ttftP95.get('off')!;
      say(`    diagnostic, sampled text (words of 1-3 tokens instead of greedy loops), c=1: ${f3(s)}  ${verdict(s <= TTFT_P95_TARGET)}`);
    }
    for (const side of WITH_REDIS ? (['on', 'on-redis'] as const) : (['on'] as const)) {
      const m = a.models.p50Diff.get(side)!;
      const o = a.oneToken.p50Diff.get(side)!;
      say(`  per-request overhead (${side} p50 - off p50), GET /v1/models: ${us(m)} (target < ${OVERHEAD_TARGET_MS} ms)  ${verdict(m < OVERHEAD_TARGET_MS)}`);
      say(`  per-request overhead (${side} p50 - off p50), max_tokens=1:   ${us(o)} (target < ${OVERHEAD_TARGET_MS} ms)  ${verdict(o < OVERHEAD_TARGET_MS)}`);
    }
    say(`  tok/s on/off (best of ${REPEATS}): c=1 ${f3(bb.c1.tokBest.get('on')! / bb.c1.tokBest.get('off')!)}, c=4 ${f3(bb.c4.tokBest.get('on')! / bb.c4.tokBest.get('off')!)} (no target; reported)`);
    if (bb.c1.errors + bb.c4.errors > 0) {
      failed = true;
      say(`bench failed: ${bb.c1.errors + bb.c4.errors} streaming request(s) errored (listed above)`);
    }
  } catch (err) {
    failed = true;
    say(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

runBench(main);
