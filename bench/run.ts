/**
 * `npm run bench`: server throughput and latency against the raw node-llama-cpp ceiling, measured
 * in the same run, on the same model file, with the same worker count, threads per worker,
 * sequences per worker, context and batch size.
 *
 *   1. models/bench.gguf is generated once (random weights, SmolLM-135M shape) and reused.
 *   2. Raw workers load the model; prompts are fitted to ~PROMPT_TOKENS tokens with its tokenizer.
 *   3. The real server (`node dist/main.js`) starts on 127.0.0.1, port 0.
 *   4. For each repetition (BENCH_REPEATS, default 3), for each level c: server load at c and raw at
 *      c back to back, alternating which goes first, so slow phases of a noisy machine hit both
 *      sides alike. Per level the best repetition of each side is reported (noise on a shared
 *      machine only ever slows a run down), with the range over repetitions next to it.
 *   5. The server gets SIGTERM; raw workers dispose their native objects; a table is printed.
 *
 * Loopback only; every loop is bounded in count (requests per client) and time (level cap).
 * Exit code 0 whatever the ratio (it is a measurement); 1 if the run failed or requests errored.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { ensureModel } from '../src/runtime/gguf/generate.js';
import { sizeThreadPool } from '../src/runtime/threadpool.js';
import { runLevel, streamCompletion, type LevelResult } from './load.js';
import { RawCeiling, type RawLevelResult } from './raw-ceiling.js';
import { summarize } from './stats.js';
import { randomWords, runBench, say, startServer, type BenchServer } from './server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODEL_PATH = path.join(ROOT, 'models', 'bench.gguf');
const PROMPT_TOKENS = 128;
const MAX_TOKENS = 64;
/** Concurrency levels and requests per client at each (bounded load). */
const LEVELS: readonly { clients: number; requestsPerClient: number }[] = [
  { clients: 1, requestsPerClient: 3 },
  { clients: 4, requestsPerClient: 2 },
  { clients: 8, requestsPerClient: 2 },
  { clients: 16, requestsPerClient: 2 },
];
const REPEATS = positiveInt(process.env.BENCH_REPEATS, 3);
/** Hard cap per level and side. */
const LEVEL_TIMEOUT_MS = positiveInt(process.env.BENCH_LEVEL_TIMEOUT_S, 180) * 1000;
const TARGET = 0.95;
/** BENCH_VERBOSE=1 prints every request's timings. */
const VERBOSE = process.env.BENCH_VERBOSE === '1';

function positiveInt(v: string | undefined, fallback: number): number {
  const n = v === undefined ? Number.NaN : Number(v);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

// ---- prompts -----------------------------------------------------------------------------------

/** Deterministic lowercase pseudo-words; a different seed per request makes every prompt unique. */
function words(seed: number, count = 400): string[] {
  return randomWords(seed, count).split(' ');
}

// ---- server ------------------------------------------------------------------------------------

// ---- reporting ---------------------------------------------------------------------------------

interface Side {
  tokPerSec: number;
  ttftP50: number;
  ttftP95: number;
  promptTokens: number;
  errors: number;
}

function fromServer(r: LevelResult): Side {
  const ok = r.requests.filter((q) => q.ok);
  const gen = r.requests.reduce((a, q) => a + q.completionTokens, 0);
  const ttft = summarize(ok.map((q) => q.ttftMs));
  return {
    tokPerSec: gen / (r.wallMs / 1000),
    ttftP50: ttft.p50,
    ttftP95: ttft.p95,
    promptTokens: summarize(ok.map((q) => q.promptTokens)).mean,
    errors: r.errors.length,
  };
}

function fromRaw(r: RawLevelResult): Side {
  const gen = r.requests.reduce((a, q) => a + q.completionTokens, 0);
  const ttft = summarize(r.requests.map((q) => q.ttftMs));
  return {
    tokPerSec: gen / (r.wallMs / 1000),
    ttftP50: ttft.p50,
    ttftP95: ttft.p95,
    promptTokens: summarize(r.requests.map((q) => q.promptTokens)).mean,
    errors: 0,
  };
}

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f0 = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : '-');
const pad = (s: string, n: number): string => s.padStart(n);
const range = (xs: Side[]): string =>
  xs.length === 0 ? '-' : `${f1(Math.min(...xs.map((x) => x.tokPerSec)))}-${f1(Math.max(...xs.map((x) => x.tokPerSec)))}`;

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const serverEnv: NodeJS.ProcessEnv = { ...process.env, INFERFLUX_MODEL_PATH: MODEL_PATH };
  delete serverEnv.INFERFLUX_MODELS;
  // The server's own resolution of sizing (auto values included), so raw uses the very same.
  // (bench/server.ts starts it on the built-in default config, which config/server.yaml equals.)
  const cfg = loadConfig({ env: serverEnv, cwd: ROOT });
  const W = cfg.scheduler.decodePoolSize;
  const rt = cfg.runtime;
  // Same libuv pool as the server (it must be set before this process's first async native call).
  const uvPool = sizeThreadPool(W);
  const capacity = W * rt.sequencesPerWorker;
  const maxClients = Math.max(...LEVELS.map((l) => l.clients));
  if (maxClients > capacity) {
    say(
      `note: c=${maxClients} > ${W} workers x ${rt.sequencesPerWorker} sequences; extra requests queue on both sides ` +
        `(raw: client k+${capacity} runs on client k's sequence after it; raw TTFT excludes that queue wait, server TTFT includes it)`,
    );
  }

  const gen = await ensureModel('bench', MODEL_PATH);
  say(`model: ${path.relative(ROOT, MODEL_PATH)} (${gen.created ? 'generated now' : 'reused'}; shape bench, random weights)`);
  say(
    `sizing (server and raw): ${W} worker(s) x ${rt.threadsPerWorker} thread(s) x ${rt.sequencesPerWorker} sequences, ` +
      `context ${rt.contextSize}/sequence, batch ${rt.batchSize}, libuv pool ${uvPool}, ${rt.cores} core(s)`,
  );
  say(`workload: ~${PROMPT_TOKENS}-token unique prompts, ${MAX_TOKENS} generated (greedy, EOS ignored), streaming; ${REPEATS} repetition(s), best kept`);

  let raw: RawCeiling | null = null;
  let server: BenchServer | null = null;
  let failed = false;
  const results = new Map<number, { server: Side[]; raw: Side[]; errors: string[] }>();
  try {
    raw = await RawCeiling.start(W, {
      modelPath: MODEL_PATH,
      threads: rt.threadsPerWorker,
      sequences: rt.sequencesPerWorker,
      contextSize: rt.contextSize,
      batchSize: rt.batchSize,
    });

    // prompts[rep][level][client][i]; one fitting call for all of them.
    const layout: { rep: number; li: number; c: number; i: number }[] = [];
    for (let rep = 0; rep < REPEATS; rep++)
      LEVELS.forEach((l, li) => {
        for (let c = 0; c < l.clients; c++) for (let i = 0; i < l.requestsPerClient; i++) layout.push({ rep, li, c, i });
      });
    const fitted = await raw.fit(layout.map((_, k) => words(1000 + k)), PROMPT_TOKENS);
    const prompts: string[][][][] = Array.from({ length: REPEATS }, () => LEVELS.map((l) => Array.from({ length: l.clients }, () => [])));
    layout.forEach((p, k) => (prompts[p.rep]![p.li]![p.c]![p.i] = fitted.prompts[k]!));
    const tok = summarize(fitted.tokens);
    say(`prompt tokens (BOS included): min ${Math.min(...fitted.tokens)}, p50 ${tok.p50}, max ${Math.max(...fitted.tokens)}`);

    const t0 = Date.now();
    server = await startServer();
    say(`server: ${server.baseUrl} ready in ${Date.now() - t0} ms`);
    if (server.sizing) say(`server says: ${server.sizing}`);

    // Warm-up: W concurrent short requests (one per engine worker, if the scheduler spreads them),
    // and one short round on every raw worker, so no side pays a cold first decode in a level.
    const warm = await Promise.all(
      Array.from({ length: W }, (_, i) => streamCompletion(server!.baseUrl, `warm up engine ${i}`, 8, AbortSignal.timeout(60_000))),
    );
    for (const w of warm) if (!w.ok) throw new Error(`warm-up request failed: ${w.error}`);
    await raw.runLevel(W, 1, Array.from({ length: W }, () => ['warm up the engine']), 8);

    for (let rep = 0; rep < REPEATS; rep++) {
      for (const [li, level] of LEVELS.entries()) {
        const p = prompts[rep]![li]!;
        const rawLevel = (): Promise<RawLevelResult> => {
          if (level.clients <= capacity) return raw!.runLevel(level.clients, level.requestsPerClient, p, MAX_TOKENS);
          // More clients than sequences: the same sequences serve the extra clients' requests in
          // turn, as a queue in front of them would (same work, same sequences per worker).
          const folded = Array.from({ length: capacity }, (_, k) => p.filter((_, c) => c % capacity === k).flat());
          return raw!.runLevel(capacity, folded[0]!.length, folded, MAX_TOKENS);
        };
        // Alternate which side goes first, so neither always runs right after the other.
        const rawFirst = rep % 2 === 1;
        const rawBefore = rawFirst ? await rawLevel() : null;
        const s = await runLevel({
          baseUrl: server.baseUrl,
          clients: level.clients,
          requestsPerClient: level.requestsPerClient,
          prompts: p,
          maxTokens: MAX_TOKENS,
          timeoutMs: LEVEL_TIMEOUT_MS,
        });
        const r = rawFirst ? rawBefore : await rawLevel();
        const entry = results.get(level.clients) ?? { server: [], raw: [], errors: [] };
        const ss = fromServer(s);
        entry.server.push(ss);
        entry.errors.push(...s.errors);
        if (r) entry.raw.push(fromRaw(r));
        results.set(level.clients, entry);
        say(
          `  rep ${rep + 1} c=${level.clients}: server ${f1(ss.tokPerSec)} tok/s in ${f0(s.wallMs)} ms (${s.requests.length} req, ${s.errors.length} err)` +
            (r ? `, raw ${f1(fromRaw(r).tokPerSec)} tok/s in ${f0(r.wallMs)} ms, ratio ${(ss.tokPerSec / fromRaw(r).tokPerSec).toFixed(2)}` : '') +
            (rawFirst ? ' (raw ran first)' : ''),
        );
        for (const e of s.errors) say(`    error: ${e}`);
        if (VERBOSE) {
          for (const q of s.requests) say(`    server req: start +${f0(q.startMs - s.requests[0]!.startMs)} ms, ttft ${f0(q.ttftMs)} ms, total ${f0(q.endMs - q.startMs)} ms, ${q.completionTokens} tok`);
          if (r) say(`    raw ttft: ${r.requests.map((q) => f0(q.ttftMs)).join(' ')} ms`);
        }
      }
    }
  } catch (err) {
    failed = true;
    say(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
    if (server) for (const l of server.log.slice(-20)) say(`  server: ${l}`);
  } finally {
    if (server) {
      // stop() prints the server's last lines itself when the exit is unclean.
      const stop = await server.stop();
      const clean = stop.code === 0 && stop.signal === null;
      say(`server stopped in ${stop.ms} ms (exit code ${stop.code}, signal ${stop.signal})${clean ? '' : ' -- WARNING: unclean exit'}`);
    }
    await raw?.close();
  }

  const best = (xs: Side[]): Side | undefined => xs.reduce<Side | undefined>((b, x) => (b === undefined || x.tokPerSec > b.tokPerSec ? x : b), undefined);
  say('');
  say(`best of ${REPEATS} per side; tok/s = generated tokens / level wall time (prefill included); TTFT in ms`);
  say(
    `${pad('c', 3)} | ${pad('server tok/s', 12)} | ${pad('raw tok/s', 10)} | ${pad('ratio', 6)} | ${pad('server TTFT p50/p95', 19)} | ${pad('raw TTFT p50/p95', 16)} | ` +
      `${pad('prompt tok s/r', 14)} | errors | ${pad('server range', 13)} | ${pad('raw range', 13)}`,
  );
  let ratio8 = Number.NaN;
  let ratio16 = Number.NaN;
  let errors = 0;
  for (const level of LEVELS) {
    const e = results.get(level.clients);
    if (!e) continue;
    const s = best(e.server)!;
    const r = best(e.raw);
    const ratio = r ? s.tokPerSec / r.tokPerSec : Number.NaN;
    if (level.clients === 8) ratio8 = ratio;
    if (level.clients === 16) ratio16 = ratio;
    errors += e.errors.length;
    say(
      `${pad(String(level.clients), 3)} | ${pad(f1(s.tokPerSec), 12)} | ${pad(r ? f1(r.tokPerSec) : '-', 10)} | ${pad(Number.isFinite(ratio) ? ratio.toFixed(2) : '-', 6)} | ` +
        `${pad(`${f0(s.ttftP50)} / ${f0(s.ttftP95)}`, 19)} | ${pad(r ? `${f0(r.ttftP50)} / ${f0(r.ttftP95)}` : '-', 16)} | ` +
        `${pad(`${f0(s.promptTokens)}/${r ? f0(r.promptTokens) : '-'}`, 14)} | ${pad(String(e.errors.length), 6)} | ${pad(range(e.server), 13)} | ${pad(range(e.raw), 13)}`,
    );
  }
  say(`ratio at c=8: ${Number.isFinite(ratio8) ? ratio8.toFixed(2) : 'n/a'} (target >= ${TARGET})`);
  if (Number.isFinite(ratio16)) say(`ratio at c=16: ${ratio16.toFixed(2)} (${capacity} sequences in all: both sides queue)`);
  return failed || errors > 0 ? 1 : 0;
}

runBench(main);
