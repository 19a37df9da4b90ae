/**
 * `node --import tsx bench/interference.ts`: how much a long prompt arriving disturbs running
 * streams (issue 3, benchmark b). Ratio = running streams' inter-token latency p99 while a
 * ~2000-token prompt is prefilled / the same streams' p99 just before it arrived, both measured in
 * the same run on the same server. Target < 2x.
 *
 * Per variant (runtime.prefill_chunk = 64, 256 (default), 512) and repetition:
 *   1. A fresh server on the bench model (built-in config + the variant's prefill_chunk).
 *   2. STREAMS streaming requests (32-token prompts, ignore_eos, max_tokens large enough to outlive
 *      the measurement) start together; once every stream has produced WARM_CHUNKS chunks, the
 *      undisturbed window runs for BASE_MS.
 *   3. One ~2000-token prompt (token ids, max_tokens 1) is sent. The disturbed window runs from
 *      its send to its first token (= the end of its prefill).
 *   4. The streams are aborted (the server cancels them), the server stops.
 *
 * ITL: gaps between successive reads that carried content chunks, divided by the chunks in the
 * later read (one chunk = one token here; the calibration line checks chunks per token), so a read
 * carrying k tokens counts as k tokens of gap/k each. A gap belongs to the window its end falls in.
 *
 * Loopback only; every stream is bounded by max_tokens and by RUN_TIMEOUT_MS.
 */
import { performance } from 'node:perf_hooks';
import { benchModel, provenance, randomTokens, runBench, say, startServer } from './server.js';
import { streamRequest, type StreamResult } from './stream-client.js';
import { summarize } from './stats.js';

const STREAMS = 4;
const STREAM_PROMPT_TOKENS = 32;
const STREAM_MAX_TOKENS = 1500;
const LONG_PROMPT_TOKENS = 2000;
const WARM_CHUNKS = 5;
const BASE_MS = 6000;
const RUN_TIMEOUT_MS = 180_000;
/**
 * BENCH_CHUNKS=16,64 overrides the variants. A variant is `C` (runtime.prefill_chunk C),
 * `decoding=D` (prefill_chunk 256, INFERFLUX_PREFILL_CHUNK_DECODING=D: prompt tokens per step while
 * any stream decodes), `C+decoding=D`, `disagg` (prefill_chunk 256, disaggregated mode: one
 * prefill worker and one decode worker, so the long prompt never shares a batch with the streams),
 * or any of these with `+noisolate` (scheduler.isolate_prompt_tokens 0: the streams stay on the
 * long prompt's worker instead of moving to the other one).
 */
interface Variant {
  label: string;
  chunk: number;
  decoding?: number;
  disaggregated?: boolean;
  noIsolate?: boolean;
}
function parseVariant(v: string): Variant {
  const label = v.trim();
  const noIsolate = label.endsWith('+noisolate');
  const base = noIsolate ? label.slice(0, -'+noisolate'.length) : label;
  if (base === 'disagg') return { label, chunk: 256, disaggregated: true, noIsolate };
  const m = /^(?:(\d+))?(?:\+?decoding=(\d+))?$/.exec(base);
  if (!m || (!m[1] && !m[2])) throw new Error(`bad BENCH_CHUNKS variant "${v}"`);
  return { label, chunk: m[1] ? Number(m[1]) : 256, decoding: m[2] ? Number(m[2]) : undefined, noIsolate };
}
function variantEnv(v: Variant): Record<string, string> {
  const env: Record<string, string> = {};
  if (v.decoding !== undefined) env.INFERFLUX_PREFILL_CHUNK_DECODING = String(v.decoding);
  if (v.disaggregated) Object.assign(env, { INFERFLUX_PREFILL_POOL_SIZE: '1', INFERFLUX_DECODE_POOL_SIZE: '1' });
  if (v.noIsolate) env.INFERFLUX_ISOLATE_PROMPT_TOKENS = '0';
  return env;
}
const CHUNKS = (process.env.BENCH_CHUNKS ?? '256,256+noisolate,disagg').split(',').map(parseVariant);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 2);

interface Gap {
  endMs: number;
  perTokenMs: number;
}

/** Per-token gaps of one stream: reads at the same timestamp are one read carrying several chunks. */
function gaps(chunkMs: number[]): Gap[] {
  const out: Gap[] = [];
  let i = 0;
  let prev = Number.NaN;
  while (i < chunkMs.length) {
    let j = i;
    while (j < chunkMs.length && chunkMs[j] === chunkMs[i]) j++;
    const k = j - i;
    if (!Number.isNaN(prev)) for (let n = 0; n < k; n++) out.push({ endMs: chunkMs[i]!, perTokenMs: (chunkMs[i]! - prev) / k });
    prev = chunkMs[i]!;
    i = j;
  }
  return out;
}

interface RunResult {
  label: string;
  base: { p50: number; p99: number; n: number };
  hit: { p50: number; p99: number; max: number; n: number };
  prefillMs: number;
  perStreamMax: number[];
}

async function runOnce(variant: Variant, rep: number): Promise<RunResult> {
  const { chunk, label } = variant;
  const server = await startServer({
    yaml: `runtime:\n  prefill_chunk: ${chunk}\n`,
    env: variantEnv(variant),
  });
  const ac = new AbortController();
  const hard = setTimeout(() => ac.abort(), RUN_TIMEOUT_MS);
  try {
    if (rep === 0 && (variant === CHUNKS[0] || variant.disaggregated)) say(`  server says (${label}): ${server.sizing}`);
    // Warm-up + calibration: one short request per engine worker; chunks vs tokens.
    const cal = await Promise.all([0, 1].map((i) => streamRequest({ baseUrl: server.baseUrl, prompt: randomTokens(7 + i, 16), maxTokens: 32, signal: AbortSignal.timeout(60_000) })));
    for (const c of cal) if (!c.ok) throw new Error(`calibration failed: ${c.error}`);
    const chunksPerToken = cal.reduce((a, c) => a + c.chunkMs.length, 0) / cal.reduce((a, c) => a + c.completionTokens, 0);

    const counts = new Array<number>(STREAMS).fill(0);
    let warmed: () => void = () => {};
    const allWarm = new Promise<void>((r) => (warmed = r));
    const streams: Promise<StreamResult>[] = Array.from({ length: STREAMS }, (_, s) =>
      streamRequest({
        baseUrl: server.baseUrl,
        prompt: randomTokens(1000 * (rep + 1) + s, STREAM_PROMPT_TOKENS),
        maxTokens: STREAM_MAX_TOKENS,
        signal: ac.signal,
        onChunk: () => {
          counts[s]!++;
          if (counts.every((c) => c >= WARM_CHUNKS)) warmed();
        },
      }),
    );
    await Promise.race([allWarm, new Promise((_, rej) => setTimeout(() => rej(new Error('streams did not warm up in 60 s')), 60_000).unref())]);
    const baseStart = performance.now();
    await new Promise((r) => setTimeout(r, BASE_MS));
    const injectAt = performance.now();
    const long = await streamRequest({ baseUrl: server.baseUrl, prompt: randomTokens(50_000 + 97 * rep + chunk, LONG_PROMPT_TOKENS), maxTokens: 1, signal: ac.signal });
    if (!long.ok) throw new Error(`long prompt failed: ${long.error ?? (long.aborted ? 'aborted (run timeout)' : '')}`);
    const firstTokenAt = long.chunkMs[0] ?? long.endMs;
    // Let the step that carried the long prompt's last chunk reach the streams too.
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    const results = await Promise.all(streams);
    for (const r of results) if (!r.aborted && !r.ok) throw new Error(`stream failed: ${r.error}`);
    if (results.some((r) => !r.aborted)) throw new Error('a stream finished before the measurement ended (raise STREAM_MAX_TOKENS)');

    const base: number[] = [];
    const hit: number[] = [];
    const perStreamMax: number[] = [];
    for (const r of results) {
      let m = 0;
      for (const g of gaps(r.chunkMs)) {
        if (g.endMs > baseStart && g.endMs <= injectAt) base.push(g.perTokenMs);
        // Gaps ending after the send, up to the first stream token after the long prompt's prefill.
        if (g.endMs > injectAt && g.endMs <= firstTokenAt + 50) {
          hit.push(g.perTokenMs);
          m = Math.max(m, g.perTokenMs);
        }
      }
      perStreamMax.push(m);
    }
    const b = summarize(base);
    const h = summarize(hit);
    const res: RunResult = {
      label,
      base: { p50: b.p50, p99: b.p99, n: b.n },
      hit: { p50: h.p50, p99: h.p99, max: Math.max(...hit), n: h.n },
      prefillMs: firstTokenAt - injectAt,
      perStreamMax,
    };
    say(
      `  prefill_chunk ${label} rep ${rep + 1}: undisturbed ITL p50/p99 ${res.base.p50.toFixed(0)}/${res.base.p99.toFixed(0)} ms (n=${res.base.n}); ` +
        `during the ${long.promptTokens}-token prefill (${res.prefillMs.toFixed(0)} ms to its first token) p50/p99 ${res.hit.p50.toFixed(0)}/${res.hit.p99.toFixed(0)} ms (n=${res.hit.n}); ` +
        `ratio p99 ${(res.hit.p99 / res.base.p99).toFixed(2)}; worst gap per stream ${perStreamMax.map((x) => x.toFixed(0)).join('/')} ms; chunks/token ${chunksPerToken.toFixed(2)}`,
    );
    return res;
  } finally {
    clearTimeout(hard);
    ac.abort();
    const stop = await server.stop();
    if (stop.code !== 0) say(`  WARNING: server exit code ${stop.code}, signal ${stop.signal}`);
  }
}

async function main(): Promise<number> {
  say(`model: ${await benchModel()}`);
  say(`code: ${provenance()}`);
  say(
    `workload: ${STREAMS} streams (${STREAM_PROMPT_TOKENS}-token prompts, greedy, EOS ignored), undisturbed window ${BASE_MS} ms, ` +
      `then one ${LONG_PROMPT_TOKENS}-token prompt; ${REPEATS} repetition(s) per prefill_chunk`,
  );
  const all: RunResult[] = [];
  for (let rep = 0; rep < REPEATS; rep++) for (const variant of CHUNKS) all.push(await runOnce(variant, rep));
  say('');
  say('prefill_chunk | undisturbed p99 ms | during-prefill p99 ms | ratio p99 per repetition | prefill ms | target < 2x');
  for (const { label } of CHUNKS) {
    const rs = all.filter((r) => r.label === label);
    const ratios = rs.map((r) => r.hit.p99 / r.base.p99);
    say(
      `${label.padStart(13)} | ${rs.map((r) => r.base.p99.toFixed(0)).join(', ').padStart(18)} | ${rs.map((r) => r.hit.p99.toFixed(0)).join(', ').padStart(21)} | ` +
        `${ratios.map((x) => x.toFixed(2)).join(', ')} | ${rs.map((r) => r.prefillMs.toFixed(0)).join(', ')} | ${ratios.every((x) => x < 2) ? 'met' : 'missed'}`,
    );
  }
  return 0;
}

runBench(main);
