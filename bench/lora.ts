/**
 * LoRA hot swap under load (`npm run bench:lora [-- --shape tiny|bench --clients N --seconds S]`).
 *
 * One real server (2 engine workers x 1 thread, 4 sequences each) on a generated model and two
 * generated adapters. N streaming clients, each looping greedy `max_tokens` requests:
 *   1. base:    every client on the base model, S seconds in all          -> tok/s (base)
 *   2. adapter: every client on `base:v1`, S seconds in all              -> tok/s (adapter)
 *      (1 and 2 alternate in ROUNDS rounds, so machine noise hits both alike)
 *   3. swap:    clients stream on v1; the bench loads v2 (POST /v1/admin/adapters) and moves every
 *               client's next request to `base:v2`, then unloads v1 (DELETE, which drains).
 *      swap time = load request sent -> every client has received a token under v2;
 *      also the load call alone and the unload (drain) call.
 * Every request in every phase is counted: ok (finish_reason length, all tokens), failed (HTTP
 * error, SSE error, short stream) and dropped (connection ended without a finish). The run fails
 * (exit 1) unless the swap is under 5 s with 0 failed and 0 dropped.
 * Loopback only; every loop is bounded by count and time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ensureModel } from '../src/runtime/gguf/generate.js';
import { generateLora } from '../src/runtime/gguf/lora.js';
import { readGgufHeader } from '../src/runtime/gguf/reader.js';
import { ROOT, provenance, runBench, say, startServer } from './server.js';
import { completionEvents, describeError } from './sse.js';

const KEY = 'ifx-bench-lora-admin-0123456789';
const MAX_TOKENS = 32;
/** Hard cap on requests per phase (the time bound normally ends a phase first). */
const MAX_REQUESTS_PER_PHASE = 400;
const SWAP_PHASE_CAP_MS = 60_000;
/** Alternations of base and adapter phases. */
const ROUNDS = 4;

interface Outcome {
  ok: boolean;
  dropped: boolean;
  tokens: number;
  firstTokenAt: number;
  error?: string;
}

interface Tally {
  ok: number;
  failed: number;
  dropped: number;
  tokens: number;
  errors: string[];
}

const tally = (): Tally => ({ ok: 0, failed: 0, dropped: 0, tokens: 0, errors: [] });

function count(t: Tally, o: Outcome): void {
  t.tokens += o.tokens;
  if (o.ok) t.ok++;
  else if (o.dropped) t.dropped++;
  else t.failed++;
  if (!o.ok && t.errors.length < 5) t.errors.push(o.error ?? 'unknown');
}

async function stream(baseUrl: string, model: string, prompt: string): Promise<Outcome> {
  const o: Outcome = { ok: false, dropped: false, tokens: 0, firstTokenAt: Number.NaN };
  try {
    const res = await fetch(`${baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model, prompt, max_tokens: MAX_TOKENS, ignore_eos: true, temperature: 0, stream: true, stream_options: { include_usage: true } }),
    });
    if (!res.ok || res.body === null) {
      o.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 160)}`;
      return o;
    }
    let finished = false;
    for await (const ev of completionEvents(res.body)) {
      if (ev.kind === 'error') {
        o.error = ev.message;
        return o;
      }
      if (ev.kind === 'done') continue;
      const c = ev.chunk;
      if (c.choices?.[0]?.text && Number.isNaN(o.firstTokenAt)) o.firstTokenAt = ev.at;
      if ((c.choices?.[0] as { finish_reason?: string | null } | undefined)?.finish_reason) finished = true;
      if (c.usage) o.tokens = c.usage.completion_tokens;
    }
    if (!finished) {
      o.dropped = true;
      o.error = 'stream ended without a finish_reason';
      return o;
    }
    o.ok = o.tokens === MAX_TOKENS;
    if (!o.ok) o.error = `${o.tokens} of ${MAX_TOKENS} tokens`;
    return o;
  } catch (err) {
    o.dropped = true;
    o.error = describeError(err);
    return o;
  }
}

async function admin(baseUrl: string, method: string, route: string, body?: unknown): Promise<{ status: number; body: unknown; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json(), ms: performance.now() - t0 };
}

/** `clients` loops of streaming requests to `model()` until `stop()`; returns the tally and the wall time. */
async function load(baseUrl: string, clients: number, model: (client: number) => string, stop: () => boolean, onOutcome?: (client: number, model: string, o: Outcome) => void): Promise<{ t: Tally; seconds: number }> {
  const t = tally();
  const t0 = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; !stop() && sent < MAX_REQUESTS_PER_PHASE; i++) {
        sent++;
        const m = model(c);
        const o = await stream(baseUrl, m, `Client ${c} request ${i}: tell me a long story about the sea.`);
        count(t, o);
        onOutcome?.(c, m, o);
      }
    }),
  );
  return { t, seconds: (performance.now() - t0) / 1000 };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { shape: { type: 'string', default: 'bench' }, clients: { type: 'string', default: '4' }, seconds: { type: 'string', default: '8' } } });
  const shape = values.shape === 'tiny' ? 'tiny' : 'bench';
  const clients = Math.max(1, Math.min(16, Number(values.clients)));
  const seconds = Math.max(2, Math.min(60, Number(values.seconds)));
  const dir = mkdtempSync(path.join(tmpdir(), 'ifx-bench-lora-'));
  const modelPath = shape === 'bench' ? path.join(ROOT, 'models', 'bench.gguf') : path.join(dir, 'tiny.gguf');
  await ensureModel(shape, modelPath);
  const baseInfo = await readGgufHeader(modelPath);
  const v1 = await generateLora({ base: baseInfo, seed: 1, outPath: path.join(dir, 'v1.gguf') });
  await generateLora({ base: baseInfo, seed: 2, outPath: path.join(dir, 'v2.gguf') });
  say(`bench:lora  ${provenance()}`);
  say(`model ${shape} (${path.relative(ROOT, modelPath)}), adapters rank ${v1.rank} alpha ${v1.alpha} on ${v1.tensors / 2} tensors; ${clients} streaming clients, max_tokens ${MAX_TOKENS}, ${seconds} s per phase`);
  const server = await startServer({
    env: {
      INFERFLUX_MODEL_PATH: modelPath,
      INFERFLUX_API_KEYS: `${KEY}:admin|generate|read`,
      INFERFLUX_DECODE_POOL_SIZE: '2',
      INFERFLUX_THREADS_PER_WORKER: '1',
      INFERFLUX_CORES: '2',
      INFERFLUX_SEQUENCES_PER_WORKER: '4',
      INFERFLUX_CONTEXT_SIZE: '512',
      INFERFLUX_ADMIN_LOAD_DIR: dir,
    },
  }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const base = path.basename(modelPath, '.gguf');
  try {
    say(`server: ${(/"msg":"[^"]*?(\d+ model\(s\)[^"]*)"/.exec(server.sizing) ?? [])[1] ?? server.sizing}`);
    const loaded = await admin(server.baseUrl, 'POST', '/v1/admin/adapters', { model: base, id: 'v1', path: 'v1.gguf' });
    if (loaded.status !== 201) throw new Error(`loading v1: ${JSON.stringify(loaded.body)}`);

    const timed = (ms: number) => {
      const end = performance.now() + ms;
      return () => performance.now() > end;
    };
    // Warm both paths once (first request per worker pays the adapter's first application).
    await load(server.baseUrl, clients, () => base, timed(1000));
    // Base and adapter alternate in rounds (B A B A ...), so a noisy neighbour on this shared
    // machine hits both alike; each phase's totals sum its rounds.
    const sum = (a: { t: Tally; seconds: number }, b: { t: Tally; seconds: number }) => ({
      t: { ok: a.t.ok + b.t.ok, failed: a.t.failed + b.t.failed, dropped: a.t.dropped + b.t.dropped, tokens: a.t.tokens + b.t.tokens, errors: [...a.t.errors, ...b.t.errors] },
      seconds: a.seconds + b.seconds,
    });
    let basePhase = { t: tally(), seconds: 0 };
    let adapterPhase = { t: tally(), seconds: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      basePhase = sum(basePhase, await load(server.baseUrl, clients, () => base, timed((seconds * 1000) / ROUNDS)));
      adapterPhase = sum(adapterPhase, await load(server.baseUrl, clients, () => `${base}:v1`, timed((seconds * 1000) / ROUNDS)));
    }
    const rate = (p: { t: Tally; seconds: number }) => p.t.tokens / p.seconds;
    say('');
    say('phase      requests  ok  failed  dropped  tokens   seconds  tok/s');
    const row = (name: string, p: { t: Tally; seconds: number }) =>
      say(`${name.padEnd(10)} ${String(p.t.ok + p.t.failed + p.t.dropped).padStart(8)} ${String(p.t.ok).padStart(3)} ${String(p.t.failed).padStart(7)} ${String(p.t.dropped).padStart(8)} ${String(p.t.tokens).padStart(7)} ${p.seconds.toFixed(1).padStart(9)} ${rate(p).toFixed(1).padStart(6)}`);
    row('base', basePhase);
    row('adapter', adapterPhase);

    // Hot swap: clients on v1; load v2 and move every client's next request to it; unload v1.
    let target = 'v1';
    let swapStart = Number.NaN;
    const movedAt = new Map<number, number>();
    let loadMs = Number.NaN;
    let unloadMs = Number.NaN;
    let loadStatus = 0;
    let unloadStatus = 0;
    let done = false;
    const swapPhase = load(
      server.baseUrl,
      clients,
      () => `${base}:${target}`,
      () => done,
      (c, m, o) => {
        if (m.endsWith(':v2') && o.ok && !movedAt.has(c)) movedAt.set(c, o.firstTokenAt);
      },
    );
    const driver = (async () => {
      await new Promise((r) => setTimeout(r, 2000));
      swapStart = performance.now();
      const l = await admin(server.baseUrl, 'POST', '/v1/admin/adapters', { model: base, id: 'v2', path: 'v2.gguf' });
      loadMs = l.ms;
      loadStatus = l.status;
      target = 'v2';
      const u = await admin(server.baseUrl, 'DELETE', '/v1/admin/adapters/v1');
      unloadMs = u.ms;
      unloadStatus = u.status;
      const capAt = performance.now() + SWAP_PHASE_CAP_MS;
      while (movedAt.size < clients && performance.now() < capAt) await new Promise((r) => setTimeout(r, 20));
      // A little steady state on v2 after the move.
      await new Promise((r) => setTimeout(r, 1000));
      done = true;
    })();
    const [swap] = await Promise.all([swapPhase, driver]);
    row('hot swap', swap);
    const moved = [...movedAt.values()];
    const swapMs = moved.length === clients ? Math.max(...moved) - swapStart : Number.NaN;
    const status = await admin(server.baseUrl, 'GET', '/v1/admin/adapters');
    say('');
    say(`hot swap: POST v2 ${loadStatus} in ${loadMs.toFixed(1)} ms; DELETE v1 (drains its running requests) ${unloadStatus} in ${unloadMs.toFixed(1)} ms`);
    say(`hot swap time (load sent -> every client streaming under v2): ${Number.isNaN(swapMs) ? `not all ${clients} clients moved` : `${(swapMs / 1000).toFixed(3)} s`}`);
    say(`adapters after the swap: ${JSON.stringify((status.body as { data: { id: string }[] }).data.map((a) => a.id))}`);
    say(`tok/s adapter / base: ${(rate(adapterPhase) / rate(basePhase)).toFixed(3)} (${rate(adapterPhase).toFixed(1)} vs ${rate(basePhase).toFixed(1)})`);
    const all = [basePhase.t, adapterPhase.t, swap.t];
    const failed = all.reduce((n, t) => n + t.failed, 0);
    const dropped = all.reduce((n, t) => n + t.dropped, 0);
    say(`requests failed ${failed}, dropped ${dropped} (all phases)`);
    for (const t of all) for (const e of t.errors) say(`  error: ${e}`);
    const pass = failed === 0 && dropped === 0 && swapMs < 5000 && loadStatus === 201 && unloadStatus === 200;
    say(pass ? 'PASS: hot swap < 5 s with 0 failed and 0 dropped' : 'FAIL: see above');
    return pass ? 0 : 1;
  } finally {
    const stopped = await server.stop();
    say(`server stopped: code ${stopped.code} in ${stopped.ms} ms`);
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
