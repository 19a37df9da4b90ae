/**
 * `npm run bench`: InferFlux against llama.cpp's own `llama-server` (the anchor), measured in the
 * same run, on the same model file, with the same llama.cpp threads, sequences (slots: one per
 * client of the busiest level, or InferFlux's total if fewer), context per sequence and batch size,
 * the same load, interleaved.
 *
 *   1. llama-server is located (`bench/llama-server/build.sh --print-path`); if it is not built the
 *      bench says how to build it and exits 1 (it never falls back to another anchor).
 *   2. models/bench.gguf is generated once (random weights, SmolLM-135M shape) and reused; prompts
 *      are fitted to 128 and 2000 tokens with its tokenizer (one node-llama-cpp model, then closed).
 *   3. Both servers start on 127.0.0.1 (InferFlux: `node dist/main.js`, port 0; llama-server: a free
 *      port). An idle server uses no CPU, so both stay up.
 *   4. For each repetition (BENCH_REPEATS, default 3), for each level (c = 1, 4, 8, 16 with 128-token
 *      prompts and 64 generated tokens; then c = 1 with 2000-token prompts for TTFT; then 8
 *      conversations of 4 turns, where prefix reuse applies, without and with a system prompt all
 *      eight share): InferFlux and llama-server back to back, alternating which goes first.
 *   5. Both get SIGTERM; the table and the ratios InferFlux / llama-server are printed, and the
 *      results go to bench/results/ as JSON and an SVG chart (BENCH_RESULTS_DIR overrides).
 *
 * BENCH_RAW=1 adds the repo's raw node-llama-cpp loop (bench/raw-ceiling.ts) as a third side.
 * Loopback only; every loop is bounded in count (requests per client) and time (level cap).
 * Exit code 0 whatever the ratios (it is a measurement); 1 if the run failed or requests errored.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { ensureModel } from '../src/runtime/gguf/generate.js';
import { sizeThreadPool } from '../src/runtime/threadpool.js';
import { lineChartSvg } from './chart-svg.js';
import { LlamaServerMissingError, locateLlamaServer, startLlamaServer, type LlamaServer } from './llama-server/process.js';
import { runConversations, runLevel, streamCompletion, type LevelResult } from './load.js';
import { RawCeiling, type RawLevelResult } from './raw-ceiling.js';
import { median, summarize } from './stats.js';
import { provenance, randomWords, runBench, say, startServer, type BenchServer } from './server.js';
import { settle } from './server-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODEL_PATH = path.join(ROOT, 'models', 'bench.gguf');
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ?? path.join(ROOT, 'bench', 'results');
const PROMPT_TOKENS = 128;
const LONG_PROMPT_TOKENS = 2000;
const MAX_TOKENS = 64;
/** The long-prompt level measures TTFT only; a few tokens are enough to end the request. */
const LONG_MAX_TOKENS = 4;
/** Turns of each conversation of the multi-turn level. */
const CONVERSATION_TURNS = 4;
/** Words of the system prompt the conversations of `mt8s` share (~500 tokens), new each repetition. */
const SYSTEM_WORDS = 250;

interface Level {
  key: string;
  clients: number;
  /** Requests per client; turns per conversation when `conversation`. */
  requestsPerClient: number;
  promptTokens: number;
  maxTokens: number;
  /**
   * Multi-turn conversations (load.ts runConversations): turn k's prompt is turn k-1's prompt +
   * answer + a new user message, so the prefix cache applies (llama-server: cache_prompt).
   */
  conversation?: boolean;
  /** Conversations open with one system prompt of this many words, the same for all of them. */
  systemWords?: number;
}
/** Concurrency levels and requests per client at each (bounded load). */
const ALL_LEVELS: readonly Level[] = [
  { key: 'c1', clients: 1, requestsPerClient: 3, promptTokens: PROMPT_TOKENS, maxTokens: MAX_TOKENS },
  { key: 'c4', clients: 4, requestsPerClient: 2, promptTokens: PROMPT_TOKENS, maxTokens: MAX_TOKENS },
  { key: 'c8', clients: 8, requestsPerClient: 2, promptTokens: PROMPT_TOKENS, maxTokens: MAX_TOKENS },
  { key: 'c16', clients: 16, requestsPerClient: 2, promptTokens: PROMPT_TOKENS, maxTokens: MAX_TOKENS },
  { key: 'long', clients: 1, requestsPerClient: 2, promptTokens: LONG_PROMPT_TOKENS, maxTokens: LONG_MAX_TOKENS },
  { key: 'mt8', clients: 8, requestsPerClient: CONVERSATION_TURNS, promptTokens: PROMPT_TOKENS, maxTokens: MAX_TOKENS, conversation: true },
  { key: 'mt8s', clients: 8, requestsPerClient: CONVERSATION_TURNS, promptTokens: PROMPT_TOKENS, maxTokens: MAX_TOKENS, conversation: true, systemWords: SYSTEM_WORDS },
];
/** BENCH_LEVELS=c8,mt8 runs only those levels (keys as above); default all. */
const LEVELS: readonly Level[] = pickLevels(process.env.BENCH_LEVELS);

function pickLevels(list: string | undefined): readonly Level[] {
  if (list === undefined || list.trim() === '') return ALL_LEVELS;
  const keys = list.split(',').map((k) => k.trim());
  const unknown = keys.filter((k) => !ALL_LEVELS.some((l) => l.key === k));
  if (unknown.length > 0) throw new Error(`BENCH_LEVELS: unknown level(s) ${unknown.join(', ')}; known: ${ALL_LEVELS.map((l) => l.key).join(', ')}`);
  return ALL_LEVELS.filter((l) => keys.includes(l.key));
}
/** Words in each follow-up user message of a conversation. */
const FOLLOW_UP_WORDS = 24;
const REPEATS = positiveInt(process.env.BENCH_REPEATS, 3);
/** Hard cap per level and side. */
const LEVEL_TIMEOUT_MS = positiveInt(process.env.BENCH_LEVEL_TIMEOUT_S, 180) * 1000;
/** BENCH_VERBOSE=1 prints every request's timings. */
const VERBOSE = process.env.BENCH_VERBOSE === '1';
const WITH_RAW = process.env.BENCH_RAW === '1';
/** llama-server's prompt cache, stated in every request (its default too); prompts are unique, so it never hits. */
const LLAMA_EXTRA_BODY = { cache_prompt: true };

/** The unique-prompt throughput levels (the chart's points). */
function isThroughput(l: Level): boolean {
  return l.key !== 'long' && !l.conversation;
}

function positiveInt(v: string | undefined, fallback: number): number {
  const n = v === undefined ? Number.NaN : Number(v);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** Deterministic lowercase pseudo-words; a different seed per request makes every prompt unique. */
function words(seed: number, count: number): string[] {
  return randomWords(seed, count).split(' ');
}

// ---- per-side numbers --------------------------------------------------------------------------

interface Side {
  tokPerSec: number;
  wallMs: number;
  ttftMs: number[];
  ttftP50: number;
  promptTokens: number;
  /** Share of prompt tokens the server reported as reused from its cache. */
  reuse: number;
  errors: number;
  /** Requests sent again after the server closed their keep-alive connection before answering (load.ts). */
  resent: number;
}

function fromServer(r: LevelResult): Side {
  const ok = r.requests.filter((q) => q.ok);
  const gen = r.requests.reduce((a, q) => a + q.completionTokens, 0);
  // A request whose every chunk had empty text (a greedy run of bytes that never complete a
  // character) has no TTFT: left out, not sorted in as NaN.
  const ttftMs = ok.map((q) => q.ttftMs).filter(Number.isFinite);
  return {
    tokPerSec: gen / (r.wallMs / 1000),
    wallMs: r.wallMs,
    ttftMs,
    ttftP50: summarize(ttftMs).p50,
    promptTokens: summarize(ok.map((q) => q.promptTokens)).mean,
    reuse: ok.reduce((a, q) => a + q.cachedTokens, 0) / Math.max(1, ok.reduce((a, q) => a + q.promptTokens, 0)),
    errors: r.errors.length,
    resent: r.requests.filter((q) => q.resent).length,
  };
}

function fromRaw(r: RawLevelResult): Side {
  const gen = r.requests.reduce((a, q) => a + q.completionTokens, 0);
  const ttftMs = r.requests.map((q) => q.ttftMs).filter(Number.isFinite);
  return {
    tokPerSec: gen / (r.wallMs / 1000),
    wallMs: r.wallMs,
    ttftMs,
    ttftP50: summarize(ttftMs).p50,
    promptTokens: summarize(r.requests.map((q) => q.promptTokens)).mean,
    reuse: 0,
    errors: 0,
    resent: 0,
  };
}

type SideName = 'inferflux' | 'llamaServer' | 'raw';

interface LevelRecord {
  level: Level;
  reps: Partial<Record<SideName, Side>>[];
  errors: string[];
}

/** Best tok/s over repetitions (noise on a shared machine only slows a run), pooled TTFT p50. */
function aggregate(rec: LevelRecord, side: SideName) {
  const xs = rec.reps.map((r) => r[side]).filter((x): x is Side => x !== undefined);
  if (xs.length === 0) return undefined;
  const tok = xs.map((x) => x.tokPerSec);
  const ttft = xs.flatMap((x) => x.ttftMs);
  return {
    bestTokPerSec: Math.max(...tok),
    tokPerSecRange: [Math.min(...tok), Math.max(...tok)] as [number, number],
    ttftP50Ms: summarize(ttft).p50,
    ttftP95Ms: summarize(ttft).p95,
    ttftN: ttft.length,
    promptTokens: summarize(xs.map((x) => x.promptTokens)).mean,
  };
}

/** Median over repetitions of the paired ratio a/b (each repetition ran both sides back to back). */
function pairedRatio(rec: LevelRecord, a: SideName, b: SideName, pick: (s: Side) => number): number {
  const rs = rec.reps.filter((r) => r[a] && r[b]).map((r) => pick(r[a]!) / pick(r[b]!));
  return rs.length === 0 ? Number.NaN : median(rs);
}

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
const f0 = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : '-');
const pad = (s: string, n: number): string => s.padStart(n);
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let anchor: { bin: string; info: string };
  try {
    anchor = locateLlamaServer();
  } catch (err) {
    if (err instanceof LlamaServerMissingError) {
      say(`bench: ${err.message}`);
      return 1;
    }
    throw err;
  }
  let buildInfo: unknown = null;
  try {
    buildInfo = JSON.parse(readFileSync(path.join(path.dirname(anchor.bin), 'build-info.json'), 'utf8'));
  } catch {
    // INFERFLUX_LLAMA_SERVER_BIN pointing at a binary built elsewhere
  }

  const serverEnv: NodeJS.ProcessEnv = { ...process.env, INFERFLUX_MODEL_PATH: MODEL_PATH };
  delete serverEnv.INFERFLUX_MODELS;
  // The server's own resolution of sizing (auto values included), so llama-server gets the same.
  // (bench/server.ts starts it on the built-in default config, which config/server.yaml equals.)
  const cfg = loadConfig({ env: serverEnv, cwd: ROOT });
  const W = cfg.scheduler.decodePoolSize;
  const rt = cfg.runtime;
  const uvPool = sizeThreadPool(W);
  const capacity = W * rt.sequencesPerWorker;
  // llama-server gets a slot per client of the busiest level, or InferFlux's sequences if fewer:
  // slots beyond the load only slow it (--parallel 32 at c=16: 132-133 tok/s, --parallel 16:
  // 166-188, same run; bench/README.md), and InferFlux's extra sequences are idle too.
  const slots = Math.min(capacity, Math.max(...ALL_LEVELS.map((l) => l.clients)));
  // The core budget lets InferFlux's steps use every core (runtime.prefill_spread_tokens > 0),
  // so llama-server gets every core too; without spreading, the static threads.
  const threads = rt.prefillSpreadTokens > 0 ? Math.max(rt.cores, W * rt.threadsPerWorker) : W * rt.threadsPerWorker;

  const gen = await ensureModel('bench', MODEL_PATH);
  say(`model: ${path.relative(ROOT, MODEL_PATH)} (${gen.created ? 'generated now' : 'reused'}; shape bench, random weights)`);
  say(`code: ${provenance()}`);
  say(`llama-server: ${anchor.bin} (${anchor.info})${buildInfo ? ` ${JSON.stringify(buildInfo)}` : ''}`);
  say(
    `sizing: InferFlux ${W} worker(s) x ${rt.threadsPerWorker} thread(s) x ${rt.sequencesPerWorker} sequences; ` +
      `llama-server -t ${threads} --parallel ${slots}; context ${rt.contextSize}/sequence, batch ${rt.batchSize}, ${rt.cores} core(s)`,
  );
  say(
    `workload: unique ~${PROMPT_TOKENS}-token prompts, ${MAX_TOKENS} generated (greedy, EOS ignored), streaming /v1/completions, c = ` +
      `${LEVELS.filter(isThroughput).map((l) => l.clients).join(', ')}; TTFT of ~${LONG_PROMPT_TOKENS}-token prompts at c=1; ` +
      `${REPEATS} repetition(s); llama-server requests carry cache_prompt: true (unique prompts: no reuse on either side); ` +
      `then 8 text conversations of ${CONVERSATION_TURNS} turns (turn k = turn k-1's prompt + answer + ${FOLLOW_UP_WORDS} new words: prefix reuse on both sides), ` +
      `without (mt) and with (mts) one ${SYSTEM_WORDS}-word system prompt shared by the eight, new each repetition`,
  );
  const loadBefore = load();
  say(`load average before: ${loadBefore}`);

  let raw: RawCeiling | null = null;
  let server: BenchServer | null = null;
  let llama: LlamaServer | null = null;
  let failed = false;
  const records: LevelRecord[] = LEVELS.map((level) => ({ level, reps: [], errors: [] }));
  const loadSamples: number[] = [];
  try {
    // With BENCH_RAW=1 the raw side is sized like the server; otherwise one small context only
    // fits the prompts with the model's tokenizer and is closed before any load.
    raw = await RawCeiling.start(WITH_RAW ? W : 1, {
      modelPath: MODEL_PATH,
      threads: rt.threadsPerWorker,
      sequences: WITH_RAW ? rt.sequencesPerWorker : 1,
      contextSize: rt.contextSize,
      batchSize: rt.batchSize,
    });
    // prompts[rep][level][client][i]; one fitting call per prompt length.
    const prompts: string[][][][] = Array.from({ length: REPEATS }, () => LEVELS.map((l) => Array.from({ length: l.clients }, () => [])));
    for (const target of [PROMPT_TOKENS, LONG_PROMPT_TOKENS]) {
      const layout: { rep: number; li: number; c: number; i: number }[] = [];
      for (let rep = 0; rep < REPEATS; rep++)
        LEVELS.forEach((l, li) => {
          if (l.promptTokens !== target) return;
          for (let c = 0; c < l.clients; c++) for (let i = 0; i < l.requestsPerClient; i++) layout.push({ rep, li, c, i });
        });
      const wordCount = Math.ceil(target * 0.9);
      const fitted = await raw.fit(layout.map((_, k) => words(target * 100_000 + 1000 + k, wordCount)), target);
      layout.forEach((p, k) => (prompts[p.rep]![p.li]![p.c]![p.i] = fitted.prompts[k]!));
      say(`prompt tokens (BOS included), target ${target}: min ${Math.min(...fitted.tokens)}, max ${Math.max(...fitted.tokens)}`);
    }
    // A conversation's turns after the first bring short follow-up messages of their own.
    LEVELS.forEach((l, li) => {
      if (!l.conversation) return;
      for (let rep = 0; rep < REPEATS; rep++)
        prompts[rep]![li]!.forEach((client, c) => {
          for (let t = 1; t < l.requestsPerClient; t++) client[t] = randomWords(9_000_000 + rep * 10_000 + li * 1000 + c * 10 + t, FOLLOW_UP_WORDS);
        });
    });
    if (!WITH_RAW) {
      await raw.close();
      raw = null;
    }

    let t0 = Date.now();
    server = await startServer();
    say(`InferFlux: ${server.baseUrl} ready in ${Date.now() - t0} ms; it says: ${server.sizing}`);
    t0 = Date.now();
    llama = await startLlamaServer({ bin: anchor.bin, modelPath: MODEL_PATH, threads, parallel: slots, contextPerSlot: rt.contextSize, batchSize: rt.batchSize });
    say(`llama-server: ${llama.baseUrl} ready in ${Date.now() - t0} ms; args: ${llama.args.join(' ')}`);

    // Warm-up: `capacity` short concurrent requests per server, one raw round, not measured.
    for (const [name, base, extra] of [
      ['InferFlux', server.baseUrl, {}],
      ['llama-server', llama.baseUrl, LLAMA_EXTRA_BODY],
    ] as const) {
      const warm = await Promise.all(
        Array.from({ length: capacity }, (_, i) => streamCompletion(base, `warm up engine ${i}`, 8, AbortSignal.timeout(60_000), extra)),
      );
      for (const w of warm) if (!w.ok) throw new Error(`${name} warm-up request failed: ${w.error}`);
    }
    if (raw) await raw.runLevel(W, 1, Array.from({ length: W }, () => ['warm up the engine']), 8);

    const runSide = async (side: SideName, level: Level, p: string[][], system: string | undefined): Promise<{ side: Side; errors: string[] }> => {
      if (side === 'raw') {
        const r =
          level.clients <= capacity
            ? await raw!.runLevel(level.clients, level.requestsPerClient, p, level.maxTokens)
            : // More clients than sequences: the same sequences serve the extra clients' requests in turn.
              await (() => {
                const folded = Array.from({ length: capacity }, (_, k) => p.filter((_, c) => c % capacity === k).flat());
                return raw!.runLevel(capacity, folded[0]!.length, folded, level.maxTokens);
              })();
        return { side: fromRaw(r), errors: [] };
      }
      const s = await (level.conversation ? runConversations : runLevel)({
        baseUrl: side === 'inferflux' ? server!.baseUrl : llama!.baseUrl,
        clients: level.clients,
        requestsPerClient: level.requestsPerClient,
        prompts: p,
        system,
        maxTokens: level.maxTokens,
        timeoutMs: LEVEL_TIMEOUT_MS,
        extraBody: side === 'llamaServer' ? LLAMA_EXTRA_BODY : {},
      });
      if (VERBOSE)
        for (const q of s.requests) say(`    ${side} req: start +${f0(q.startMs - s.requests[0]!.startMs)} ms, ttft ${f0(q.ttftMs)} ms, total ${f0(q.endMs - q.startMs)} ms, prompt ${q.promptTokens} tok (${q.cachedTokens} cached), ${q.completionTokens} tok`);
      return { side: fromServer(s), errors: s.errors.map((e) => `${side}: ${e}`) };
    };

    for (let rep = 0; rep < REPEATS; rep++) {
      for (const [li, level] of LEVELS.entries()) {
        const order: SideName[] = (rep + li) % 2 === 0 ? ['inferflux', 'llamaServer'] : ['llamaServer', 'inferflux'];
        if (raw && !level.conversation) order.push('raw');
        const entry: Partial<Record<SideName, Side>> = {};
        const rec = records[li]!;
        for (const side of order) {
          // Each side starts on a quiet machine: the other side's leftover work (llama-server's
          // threads stay busy ~130 ms after a request) would otherwise slow its first requests.
          const quiet = await settle([server.pid, llama.pid]);
          if (!quiet.settled) say(`    note: servers still busy after ${quiet.ms} ms; running ${side} anyway`);
          const system = level.systemWords ? `System: ${randomWords(8_000_000 + rep * 1000 + li, level.systemWords)}\n` : undefined;
          const r = await runSide(side, level, prompts[rep]![li]!, system);
          entry[side] = r.side;
          rec.errors.push(...r.errors);
          for (const e of r.errors) say(`    error: ${e}`);
        }
        rec.reps.push(entry);
        loadSamples.push(loadavg()[0]!);
        const i = entry.inferflux!;
        const l = entry.llamaServer!;
        say(
          `  rep ${rep + 1} ${level.key} (c=${level.clients}, ${level.promptTokens}-token prompts): ` +
            `InferFlux ${f1(i.tokPerSec)} tok/s, TTFT p50 ${f0(i.ttftP50)} ms; llama-server ${f1(l.tokPerSec)} tok/s, TTFT p50 ${f0(l.ttftP50)} ms; ` +
            `ratio tok/s ${f2(i.tokPerSec / l.tokPerSec)}, TTFT ${f2(i.ttftP50 / l.ttftP50)}` +
            (level.conversation ? `; prompt tokens reused: InferFlux ${f0(100 * i.reuse)}%, llama-server ${f0(100 * l.reuse)}%` : '') +
            (entry.raw ? `; raw ${f1(entry.raw.tokPerSec)} tok/s` : '') +
            (i.resent + l.resent > 0 ? `; resent on a closed connection: InferFlux ${i.resent}, llama-server ${l.resent}` : '') +
            ` (${order[0]} first; load ${loadavg()[0]!.toFixed(2)})`,
        );
      }
    }
  } catch (err) {
    failed = true;
    say(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
    if (server) for (const l of server.log.slice(-20)) say(`  InferFlux: ${l}`);
    if (llama) for (const l of llama.log.slice(-20)) say(`  llama-server: ${l}`);
  } finally {
    if (server) {
      const stop = await server.stop();
      const clean = stop.code === 0 && stop.signal === null;
      say(`InferFlux stopped in ${stop.ms} ms (exit code ${stop.code}, signal ${stop.signal})${clean ? '' : ' -- WARNING: unclean exit'}`);
    }
    if (llama) {
      const stop = await llama.stop();
      say(`llama-server stopped in ${stop.ms} ms (exit code ${stop.code}, signal ${stop.signal})`);
    }
    await raw?.close();
  }
  const loadAfter = load();

  // ---- report --------------------------------------------------------------------------------
  say('');
  say(`tok/s = generated tokens / level wall time (prefill included), best of ${REPEATS}; TTFT p50/p95 pooled over repetitions, ms`);
  say(`ratio = InferFlux / llama-server: "best" compares the best repetitions, "paired" is the median of each repetition's back-to-back ratio`);
  say(
    `${pad('level', 6)} | ${pad('InferFlux tok/s', 15)} | ${pad('llama-server', 12)} | ${pad('best', 5)} | ${pad('paired', 6)} | ` +
      `${pad('InferFlux TTFT', 14)} | ${pad('llama TTFT', 11)} | ${pad('TTFT p50 ratio', 14)} | ${pad('prompt tok', 10)} | errors | ${pad('InferFlux range', 15)} | ${pad('llama range', 13)}` +
      (WITH_RAW ? ` | ${pad('raw tok/s', 9)}` : ''),
  );
  let errors = 0;
  const json: Record<string, unknown>[] = [];
  for (const rec of records) {
    const i = aggregate(rec, 'inferflux');
    const l = aggregate(rec, 'llamaServer');
    const r = aggregate(rec, 'raw');
    errors += rec.errors.length;
    if (!i || !l) continue;
    const isLong = rec.level.key === 'long';
    const label = isLong ? `${rec.level.promptTokens}c1` : rec.level.conversation ? `${rec.level.systemWords ? 'mts' : 'mt'} c=${rec.level.clients}` : `c=${rec.level.clients}`;
    const best = i.bestTokPerSec / l.bestTokPerSec;
    const paired = pairedRatio(rec, 'inferflux', 'llamaServer', (s) => s.tokPerSec);
    const ttftRatio = i.ttftP50Ms / l.ttftP50Ms;
    say(
      `${pad(label, 6)} | ${pad(isLong ? '-' : f1(i.bestTokPerSec), 15)} | ${pad(isLong ? '-' : f1(l.bestTokPerSec), 12)} | ` +
        `${pad(isLong ? '-' : f2(best), 5)} | ${pad(isLong ? '-' : f2(paired), 6)} | ${pad(`${f0(i.ttftP50Ms)}/${f0(i.ttftP95Ms)}`, 14)} | ${pad(`${f0(l.ttftP50Ms)}/${f0(l.ttftP95Ms)}`, 11)} | ` +
        `${pad(f2(ttftRatio), 14)} | ${pad(`${f0(i.promptTokens)}/${f0(l.promptTokens)}`, 10)} | ${pad(String(rec.errors.length), 6)} | ` +
        `${pad(isLong ? '-' : `${f1(i.tokPerSecRange[0])}-${f1(i.tokPerSecRange[1])}`, 15)} | ${pad(isLong ? '-' : `${f1(l.tokPerSecRange[0])}-${f1(l.tokPerSecRange[1])}`, 13)}` +
        (WITH_RAW ? ` | ${pad(r ? f1(r.bestTokPerSec) : '-', 9)}` : ''),
    );
    json.push({
      level: rec.level,
      inferflux: i,
      llamaServer: l,
      ...(r ? { raw: r } : {}),
      ratio: { tokPerSecBest: best, tokPerSecPairedMedian: paired, ttftP50: ttftRatio },
      reps: rec.reps,
      errors: rec.errors,
    });
  }
  say(`load average: before ${loadBefore}, after ${loadAfter}; 1-min load after each level: ${loadSamples.map((x) => x.toFixed(1)).join(' ')}`);

  if (!failed && json.length === ALL_LEVELS.length) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const result = {
      date: new Date().toISOString(),
      code: provenance(),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? '?', loadBefore, loadAfter, loadAfterEachLevel: loadSamples },
      sizing: { workers: W, threadsPerWorker: rt.threadsPerWorker, sequencesPerWorker: rt.sequencesPerWorker, contextSize: rt.contextSize, batchSize: rt.batchSize, libuvPool: uvPool },
      llamaServer: { bin: anchor.bin, build: buildInfo, args: llama?.args.map((a) => (a === MODEL_PATH ? 'models/bench.gguf' : a)) },
      workload: { promptTokens: PROMPT_TOKENS, longPromptTokens: LONG_PROMPT_TOKENS, maxTokens: MAX_TOKENS, longMaxTokens: LONG_MAX_TOKENS, repeats: REPEATS, greedy: true, ignoreEos: true, stream: true },
      levels: json,
    };
    const jsonPath = path.join(RESULTS_DIR, 'throughput.json');
    writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
    const tput = json.filter((j) => isThroughput(j.level as Level));
    const xs = tput.map((j) => (j.level as Level).clients);
    const pts = (side: 'inferflux' | 'llamaServer') =>
      tput.map((j) => [(j.level as Level).clients, (j[side] as { bestTokPerSec: number }).bestTokPerSec] as const);
    const c8 = tput.find((j) => (j.level as Level).clients === 8);
    const svg = lineChartSvg({
      title: 'Aggregate tok/s vs concurrency (bench model, same run)',
      subtitle:
        `${cpus().length} cores, ${W}x${rt.threadsPerWorker} threads, ${capacity} sequences; 128-token prompts, 64 tokens; best of ${REPEATS}` +
        (c8 ? `; c=8 ratio ${f2((c8.ratio as { tokPerSecBest: number }).tokPerSecBest)}` : ''),
      xLabel: 'concurrent clients',
      yLabel: 'generated tokens / s',
      xs,
      series: [
        { name: 'InferFlux', color: '#1f77b4', points: pts('inferflux') },
        { name: 'llama-server', color: '#d62728', points: pts('llamaServer') },
      ],
    });
    const svgPath = path.join(RESULTS_DIR, 'throughput.svg');
    writeFileSync(svgPath, svg);
    say(`results: ${path.relative(ROOT, jsonPath)}, ${path.relative(ROOT, svgPath)}`);
  } else {
    say('results not written: the run did not complete');
  }
  return failed || errors > 0 ? 1 : 0;
}

runBench(main);
