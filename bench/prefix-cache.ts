/**
 * `node --import tsx bench/prefix-cache.ts`: prefix reuse (issue 3, benchmark c), two parts, each
 * a ratio measured in the same run.
 *
 * 1. TTFT, cached vs cold. Sequential requests on an idle server: a cold request with a unique
 *    ~2000-token prompt (token ids), then right after it the same 2000 tokens + a new 16-token
 *    suffix. With nothing else running, the scheduler places both on worker 0 (least loaded, lowest
 *    index first), where the engine gives the second one the sequence that still holds the first's
 *    KV. Ratio = cold TTFT / cached TTFT; target >= 3x. `cached_tokens` is printed as the check.
 *
 * 2. Hit rate on a multi-turn agent trace: AGENTS agents run concurrently, each for TURNS turns.
 *    All share one ~500-token system prompt; turn k's prompt = turn k-1's prompt + the model's
 *    answer + a new ~40-token user message (text prompts, as an agent framework sends them).
 *    Hit = `cached_tokens > 0`; also cached/prompt tokens overall and "full" hits (everything up
 *    to the previous turn's answer reused). Target > 80%. Run with the default 2 engine workers
 *    and with INFERFLUX_DECODE_POOL_SIZE=1 (same 4 sequences per worker) to show what placement
 *    across workers costs.
 *
 * Loopback only; every request is bounded (max_tokens and a timeout), the trace by its turn count.
 */
import { benchModel, provenance, randomTokens, randomWords, runBench, say, startServer, type BenchServer } from './server.js';
import { streamRequest } from './stream-client.js';
import { summarize } from './stats.js';

const PREFIX_TOKENS = 2000;
const SUFFIX_TOKENS = 16;
const PAIRS = Number(process.env.BENCH_REPEATS ?? 3);
const AGENTS = 4;
const TURNS = 6;
const ANSWER_TOKENS = 32;
const REQUEST_TIMEOUT_MS = 120_000;

async function ttftPairs(server: BenchServer): Promise<{ cold: number[]; cached: number[] }> {
  const cold: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const prefix = randomTokens(90_000 + i, PREFIX_TOKENS);
    const a = await streamRequest({ baseUrl: server.baseUrl, prompt: prefix, maxTokens: 1, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (!a.ok) throw new Error(`cold request failed: ${a.error}`);
    const b = await streamRequest({
      baseUrl: server.baseUrl,
      prompt: [...prefix, ...randomTokens(95_000 + i, SUFFIX_TOKENS)],
      maxTokens: 1,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (!b.ok) throw new Error(`cached request failed: ${b.error}`);
    cold.push(a.ttftMs);
    cached.push(b.ttftMs);
    say(
      `  pair ${i + 1}: cold ${a.promptTokens} tok (cached ${a.cachedTokens}) TTFT ${a.ttftMs.toFixed(0)} ms; ` +
        `warm ${b.promptTokens} tok (cached ${b.cachedTokens}) TTFT ${b.ttftMs.toFixed(0)} ms; ratio ${(a.ttftMs / b.ttftMs).toFixed(1)}x`,
    );
  }
  return { cold, cached };
}

interface TurnResult {
  agent: number;
  turn: number;
  promptTokens: number;
  cachedTokens: number;
  /** Prompt tokens of this agent's previous turn + its answer: what a perfect cache would reuse. */
  reusable: number;
  ttftMs: number;
}

async function agentTrace(server: BenchServer, seed: number): Promise<TurnResult[]> {
  const system = `System: you are a careful agent. ${randomWords(seed, 330)}\n`;
  const out: TurnResult[] = [];
  await Promise.all(
    Array.from({ length: AGENTS }, async (_, a) => {
      let prompt = system;
      let reusable = 0;
      for (let t = 0; t < TURNS; t++) {
        prompt += `User: ${randomWords(seed * 100 + a * 10 + t, 25)}\nAssistant:`;
        const r = await streamRequest({ baseUrl: server.baseUrl, prompt, maxTokens: ANSWER_TOKENS, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        if (!r.ok) throw new Error(`agent ${a} turn ${t + 1} failed: ${r.aborted ? `no answer within ${REQUEST_TIMEOUT_MS} ms` : r.error}`);
        out.push({ agent: a, turn: t + 1, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, reusable, ttftMs: r.ttftMs });
        prompt += `${r.text}\n`;
        // Tokens of the previous prompt + answer; re-tokenizing the joined text may shift a token
        // or two at the seam, so "full" below allows a small margin.
        reusable = r.promptTokens + r.completionTokens;
      }
    }),
  );
  return out;
}

function traceSummary(rs: TurnResult[]): { hitRate: number; tokenRate: number; fullRate: number; laterHitRate: number } {
  const hits = rs.filter((r) => r.cachedTokens > 0).length;
  const later = rs.filter((r) => r.turn > 1);
  const full = later.filter((r) => r.cachedTokens >= r.reusable - 4).length;
  const cached = rs.reduce((a, r) => a + r.cachedTokens, 0);
  const prompt = rs.reduce((a, r) => a + r.promptTokens, 0);
  return { hitRate: hits / rs.length, tokenRate: cached / prompt, fullRate: full / later.length, laterHitRate: later.filter((r) => r.cachedTokens > 0).length / later.length };
}

async function main(): Promise<number> {
  say(`model: ${await benchModel()}`);
  say(`code: ${provenance()}`);
  const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;

  // Part 1 and part 2 (default sizing) share a server.
  say(`part 1: TTFT of a ${PREFIX_TOKENS}+${SUFFIX_TOKENS}-token prompt whose ${PREFIX_TOKENS}-token prefix was just evaluated vs a cold ${PREFIX_TOKENS}-token prompt`);
  const variants: { name: string; env: Record<string, string> }[] = [
    { name: 'default (2 workers x 4 sequences)', env: {} },
    // Same threads in all (1), so the variant differs only in placement, not in thread count.
    { name: 'INFERFLUX_DECODE_POOL_SIZE=1 (1 worker x 1 thread x 4 sequences)', env: { INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_THREADS_PER_WORKER: '1' } },
  ];
  const traces: { name: string; runs: ReturnType<typeof traceSummary>[] }[] = [];
  let ttft: { cold: number[]; cached: number[] } | null = null;
  for (const [vi, v] of variants.entries()) {
    const server = await startServer({ env: v.env });
    try {
      say(`server (${v.name}) says: ${server.sizing}`);
      const warm = await streamRequest({ baseUrl: server.baseUrl, prompt: 'warm up', maxTokens: 4, signal: AbortSignal.timeout(60_000) });
      if (!warm.ok) throw new Error(`warm-up failed: ${warm.error}`);
      if (vi === 0) ttft = await ttftPairs(server);
      say(`part 2 (${v.name}): ${AGENTS} concurrent agents x ${TURNS} turns, shared ~500-token system prompt, ${ANSWER_TOKENS}-token answers`);
      const runs: ReturnType<typeof traceSummary>[] = [];
      for (let rep = 0; rep < 2; rep++) {
        const rs = await agentTrace(server, 7 + rep * 13 + vi * 101);
        const s = traceSummary(rs);
        runs.push(s);
        rs.sort((x, y) => x.agent - y.agent || x.turn - y.turn);
        say(
          `  trace ${rep + 1}: hit rate ${pct(s.hitRate)} (turns 2+: ${pct(s.laterHitRate)}), cached/prompt tokens ${pct(s.tokenRate)}, ` +
            `full reuse of the previous turn ${pct(s.fullRate)} of turns 2+`,
        );
        for (let a = 0; a < AGENTS; a++) {
          const mine = rs.filter((r) => r.agent === a);
          say(`    agent ${a}: cached/prompt(reusable) per turn ${mine.map((r) => `${r.cachedTokens}/${r.promptTokens}(${r.reusable})`).join('  ')}`);
        }
      }
      traces.push({ name: v.name, runs });
    } finally {
      const stop = await server.stop();
      if (stop.code !== 0) say(`  WARNING: server exit code ${stop.code}, signal ${stop.signal}`);
    }
  }

  say('');
  if (ttft) {
    const c = summarize(ttft.cold);
    const w = summarize(ttft.cached);
    const ratios = ttft.cold.map((x, i) => x / ttft!.cached[i]!);
    say(
      `TTFT cold p50 ${c.p50.toFixed(0)} ms, cached p50 ${w.p50.toFixed(0)} ms: ratio ${(c.p50 / w.p50).toFixed(1)}x ` +
        `(per pair ${Math.min(...ratios).toFixed(1)}-${Math.max(...ratios).toFixed(1)}x; target >= 3x: ${c.p50 / w.p50 >= 3 ? 'met' : 'missed'})`,
    );
  }
  for (const t of traces) {
    say(
      `agent trace, ${t.name}: hit rate ${t.runs.map((s) => pct(s.hitRate)).join(', ')}; cached/prompt tokens ${t.runs.map((s) => pct(s.tokenRate)).join(', ')}; ` +
        `full reuse (turns 2+) ${t.runs.map((s) => pct(s.fullRate)).join(', ')} (target > 80%)`,
    );
  }
  return 0;
}

runBench(main);
