/**
 * `npm run bench:spec`: what speculative decoding does to decode throughput, measured in one run.
 *
 * Three servers on the same target model, started together and driven one at a time, interleaved
 * round by round (so background load on a shared machine hits every side alike):
 *   - `off`:   runtime.speculative_decoding.enabled = false (the default);
 *   - `self`:  on, the target as its own draft: every proposal is the target's own greedy choice
 *              (the accept path, the best case a draft can reach);
 *   - `other`: on, a draft of the same shape and vocabulary with different weights (seed 7): nearly
 *              every proposal is refused and trimmed (the reject path, a useless draft's cost).
 * Requests are greedy completions (temperature 0: the only requests that speculate) with a bounded
 * `max_tokens`, one stream and then `BENCH_SPEC_CONCURRENCY` concurrent streams. Greedy output is
 * identical on every side (checked here: each side's completion text per prompt must match `off`),
 * so every side does the same tokens. tok/s = completion tokens / wall time of the level, summed
 * over rounds; ratio = side / off within one round, and the headline is the median over rounds (one
 * round disturbed by another process on the machine moves it less than a sum would). The spec counters (`inferflux_spec_*`) give the acceptance.
 *
 * Shapes (`BENCH_SPEC_SHAPE`): `tiny` (default; 2048 vocab, the pair the speculative test uses,
 * generated in seconds) or `bench` (the SmolLM-135M-shaped bench model; its seed-7 draft is
 * another ~133 MB generated once into models/).
 *
 * Loopback only; bounded: `BENCH_SPEC_ROUNDS` rounds x `BENCH_SPEC_REQUESTS` requests per level,
 * each request with a timeout.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureModel } from '../src/runtime/gguf/generate.js';
import { isShapeName } from '../src/runtime/gguf/shapes.js';
import { median } from './stats.js';
import { ROOT, counterByLabel, provenance, randomWords, runBench, say, startServer, type BenchServer } from './server.js';

const SHAPE = process.env.BENCH_SPEC_SHAPE ?? 'tiny';
const ROUNDS = Number(process.env.BENCH_SPEC_ROUNDS ?? 5);
const REQUESTS = Number(process.env.BENCH_SPEC_REQUESTS ?? 8);
const CONCURRENCY = Number(process.env.BENCH_SPEC_CONCURRENCY ?? 4);
const MAX_TOKENS = Number(process.env.BENCH_SPEC_MAX_TOKENS ?? 64);
const CHUNK = process.env.BENCH_SPEC_CHUNK_SIZE ?? '4';
const REQUEST_TIMEOUT_MS = 120_000;

interface Side {
  name: 'off' | 'self' | 'other';
  server: BenchServer;
  model: string;
}

interface LevelResult {
  tokens: number;
  ms: number;
  texts: Map<number, string>;
}

async function complete(side: Side, i: number): Promise<{ tokens: number; text: string }> {
  const res = await fetch(`${side.server.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: side.model, prompt: randomWords(9000 + i, 12), max_tokens: MAX_TOKENS, temperature: 0 }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const json = (await res.json()) as { usage?: { completion_tokens: number }; choices?: { text: string }[] };
  if (!res.ok || !json.usage || !json.choices) throw new Error(`${side.name}: request failed (${res.status}): ${JSON.stringify(json).slice(0, 300)}`);
  return { tokens: json.usage.completion_tokens, text: json.choices[0]!.text };
}

/** `REQUESTS` requests (prompts `base`..`base+REQUESTS-1`) through `clients` concurrent streams. */
async function level(side: Side, clients: number, base: number): Promise<LevelResult> {
  const texts = new Map<number, string>();
  let tokens = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < REQUESTS) {
        const i = base + next++;
        const r = await complete(side, i);
        tokens += r.tokens;
        texts.set(i, r.text);
      }
    }),
  );
  return { tokens, ms: performance.now() - t0, texts };
}

async function models(): Promise<{ target: string; draft: string }> {
  if (!isShapeName(SHAPE)) throw new Error(`BENCH_SPEC_SHAPE must be a generator shape (tiny, bench), got ${SHAPE}`);
  const dir = path.join(ROOT, 'models');
  const target = await ensureModel(SHAPE, path.join(dir, `spec-${SHAPE}-seed0.gguf`), 0);
  const draft = await ensureModel(SHAPE, path.join(dir, `spec-${SHAPE}-seed7.gguf`), 7);
  return { target: target.path, draft: draft.path };
}

async function modelId(server: BenchServer): Promise<string> {
  const res = await fetch(`${server.baseUrl}/v1/models`, { signal: AbortSignal.timeout(10_000) });
  const json = (await res.json()) as { data: { id: string }[] };
  return json.data[0]!.id;
}

/** The sizing part of the server's config log line (a pino JSON line or plain text). */
function sizing(line: string): string {
  let msg = line;
  try {
    msg = (JSON.parse(line) as { msg?: string }).msg ?? line;
  } catch {
    // plain text
  }
  return msg.replace(/^.*?: (?=\d+ model)/, '');
}

async function main(): Promise<number> {
  say(`speculative decoding bench: ${provenance()}; node ${process.version}; loopback only`);
  const m = await models();
  say(`target: ${path.relative(ROOT, m.target)}; other draft: ${path.relative(ROOT, m.draft)} (shape ${SHAPE}, random weights)`);
  say(`greedy completions, max_tokens ${MAX_TOKENS}, chunk_size ${CHUNK}; ${ROUNDS} round(s) x ${REQUESTS} requests per level; levels c=1 and c=${CONCURRENCY}`);
  const base = { INFERFLUX_MODEL_PATH: m.target };
  const on = (draft: string) => ({ ...base, INFERFLUX_SPECULATIVE_ENABLED: 'true', INFERFLUX_SPEC_DRAFT_MODEL: draft, INFERFLUX_SPEC_CHUNK_SIZE: CHUNK });
  const sides: Side[] = [];
  try {
    for (const [name, env] of [['off', { ...base, INFERFLUX_SPECULATIVE_ENABLED: 'false' }], ['self', on(m.target)], ['other', on(m.draft)]] as const) {
      const server = await startServer({ env });
      sides.push({ name, server, model: await modelId(server) });
    }
    say(`servers: ${sides.map((s) => `${s.name} ${s.server.baseUrl}`).join(', ')}`);
    say(`sizing (each): ${sizing(sides[0]!.server.sizing)}`);
    // Warm-up: one request per side (first context use, page faults).
    for (const s of sides) await complete(s, 0);

    const levels = [1, CONCURRENCY];
    const acc = new Map<string, { tokens: number; ms: number; ratios: number[] }>();
    let mismatches = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of levels) {
        const promptBase = 1 + round * 1000 + c * 100;
        const results = new Map<string, LevelResult>();
        for (const s of sides) results.set(s.name, await level(s, c, promptBase));
        const off = results.get('off')!;
        for (const s of sides) {
          const r = results.get(s.name)!;
          for (const [i, t] of r.texts) if (off.texts.get(i) !== t) mismatches++;
          const key = `${s.name}|${c}`;
          const a = acc.get(key) ?? { tokens: 0, ms: 0, ratios: [] };
          a.tokens += r.tokens;
          a.ms += r.ms;
          a.ratios.push(r.tokens / r.ms / (off.tokens / off.ms));
          acc.set(key, a);
        }
      }
    }

    say('\n  side  |  c | tokens |  tok/s | ratio vs off (median) | per-round ratios');
    for (const c of levels) {
      const off = acc.get(`off|${c}`)!;
      for (const s of sides) {
        const a = acc.get(`${s.name}|${c}`)!;
        const tps = a.tokens / (a.ms / 1000);
        say(`  ${s.name.padEnd(5)} | ${String(c).padStart(2)} | ${String(a.tokens).padStart(6)} | ${tps.toFixed(1).padStart(6)} | ${median(a.ratios).toFixed(3).padStart(21)} | ${a.ratios.map((x) => x.toFixed(2)).join(' ')}`);
      }
    }
    say('\n  side  | spec chunks | accepted (all proposals kept) | tokens reused');
    for (const s of sides) {
      const get = async (n: string) => [...(await counterByLabel(s.server.baseUrl, `inferflux_spec_${n}_total`, 'model')).values()].reduce((x, y) => x + y, 0);
      const chunks = await get('chunks');
      const accepted = await get('chunks_accepted');
      const reused = await get('tokens_reused');
      const pct = chunks === 0 ? '-' : `${((100 * accepted) / chunks).toFixed(0)}%`;
      say(`  ${s.name.padEnd(5)} | ${String(chunks).padStart(11)} | ${`${accepted} (${pct})`.padStart(29)} | ${String(reused).padStart(13)}`);
    }
    say(`\ngreedy output identical to off: ${mismatches === 0 ? 'yes' : `NO, ${mismatches} completion(s) differ`}`);
    return mismatches === 0 ? 0 : 1;
  } finally {
    for (const s of sides) {
      const r = await s.server.stop();
      say(`${s.name}: server stopped in ${r.ms} ms (exit code ${r.code}, signal ${r.signal})`);
    }
  }
}

runBench(main);
