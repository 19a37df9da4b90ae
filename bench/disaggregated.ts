/**
 * `node --import tsx bench/disaggregated.ts`: issue 3 item 6(d), the KV hand-off of disaggregated
 * mode, and item 2's mode choice, all measured in one run on the bench model (2 cores: 1 prefill +
 * 1 decode worker x 1 thread against unified 2 workers x 1 thread). Servers run one at a time.
 *
 *   A. Transfer latency (ring 64 MiB, the default). Token-id prompts of 128, 512 and 2000 tokens
 *      (unique, so no prefix reuse), 16 generated, at c=1 (4 requests; 3 of 2000) and c=4 (4
 *      clients x 2; x 1 of 2000),
 *      BENCH_REPEATS times. Server side: `inferflux_kv_transfer_seconds` (prefill hand-off -> first
 *      token sampled on the decode worker). Only the histogram is exported, so p50/p99 are bucket
 *      upper bounds; at c=1 the bench scrapes after every request, and the `_sum` delta of one
 *      observation is that request's exact transfer time (per-request precision without a server
 *      change). Client side: the gap between the 1st streamed token (sampled on the prefill worker)
 *      and the 2nd (the decode worker's first), next to the same streams' median inter-token gap.
 *      Blocked rate = `inferflux_kv_blocked_tickets_total` / `inferflux_kv_tickets_total` deltas.
 *   B. Small rings: 48 MiB (one 2k-token state, ~46 MB, fits; two do not) with 2 concurrent 2k
 *      prompts (their prefills end apart, so this rarely blocks); 4 MiB (one 128-token state,
 *      ~3 MB, fits) with 4 clients x 2 128-token prompts (prefilled in one batch, so their
 *      hand-offs arrive together), then one 2k prompt whose state can never fit (the fallback
 *      path). Server log lines about hand-offs are printed as evidence.
 *   C. Mode choice: unified vs disaggregated, 128-token prompts, 64 generated, ignore_eos, greedy,
 *      c=4 and c=8 (2 requests per client), BENCH_REPEATS servers of each mode, alternating which
 *      mode starts first. Aggregate tok/s = generated tokens / level wall time; TTFT p50/p95.
 *
 * Loopback only; every loop is bounded in requests and by a level timeout and a run timeout.
 * Exit code 0 when the measurement completed (whatever the verdicts); 1 on a failed request, an
 * unclean server exit or a failed run.
 */
import { performance } from 'node:perf_hooks';
import { benchModel, provenance, randomTokens, say, startServer, type BenchServer } from './server.js';
import { bucketQuantile, fmtBound, histDelta, histogram, sampleSum, scrape, shareAtOrBelow, type HistSnapshot } from './prom-scrape.js';
import { median, summarize } from './stats.js';
import { streamRequest, type StreamResult } from './stream-client.js';

const REPEATS = positiveInt(process.env.BENCH_REPEATS, 2);
const RUN_TIMEOUT_MS = positiveInt(process.env.BENCH_DISAGG_TIMEOUT_S, 1500) * 1000;
const LEVEL_TIMEOUT_MS = 240_000;
/** BENCH_DISAGG_PARTS=A runs only the transfer part (A transfer, B small rings, C mode choice). */
const PARTS = new Set((process.env.BENCH_DISAGG_PARTS ?? 'A,B,C').split(',').map((x) => x.trim().toUpperCase()));
const SIZES = [128, 512, 2000] as const;
const TRANSFER_GEN = 16;
/** Requests per client: a 2000-token prompt takes ~15 s to prefill on one thread, so fewer of those. */
const TRANSFER_LEVELS = [
  { clients: 1, perClient: (size: number) => (size >= 2000 ? 3 : 4) },
  { clients: 4, perClient: (size: number) => (size >= 2000 ? 1 : 2) },
] as const;
const MODE_PROMPT = 128;
const MODE_GEN = 64;
const MODE_LEVELS = [4, 8] as const;
const MODE_PER_CLIENT = 2;
const MiB = 1024 * 1024;
/** Bench model: 30 layers x (K + V) x 192 f16 values per token (notes §13). */
const KV_BYTES_PER_TOKEN = 23_040;
const PROBE_TIMEOUT_MS = 60_000;
const HIST = 'inferflux_kv_transfer_seconds';
/** The KV-moving part of a transfer: hand-off -> state loaded on the decode worker. */
const HYDRATE = 'inferflux_kv_hydrate_seconds';
const DISAGG = { INFERFLUX_PREFILL_POOL_SIZE: '1', INFERFLUX_DECODE_POOL_SIZE: '1' };
const UNIFIED = { INFERFLUX_PREFILL_POOL_SIZE: '0' };

function positiveInt(v: string | undefined, fallback: number): number {
  const n = v === undefined ? Number.NaN : Number(v);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

const t0 = performance.now();
const runDeadline = t0 + RUN_TIMEOUT_MS;
let seed = 1_000;
let failures = 0;
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '-');
const levelSignal = (): AbortSignal => AbortSignal.timeout(Math.max(1000, Math.min(LEVEL_TIMEOUT_MS, runDeadline - performance.now())));

function checkRun(): void {
  if (performance.now() > runDeadline) throw new Error(`run timeout (${RUN_TIMEOUT_MS / 1000} s) reached`);
}

function record(rs: StreamResult[]): void {
  for (const r of rs.filter((x) => !x.ok)) {
    failures++;
    say(`    request failed: ${r.error ?? (r.aborted ? 'aborted (level timeout)' : '?')}`);
  }
}

/** `clients` closed-loop clients, `perClient` requests each, unique token-id prompts. */
async function level(s: BenchServer, clients: number, perClient: number, promptTokens: number, gen: number): Promise<{ rs: StreamResult[]; wallMs: number }> {
  checkRun();
  const signal = levelSignal();
  const start = performance.now();
  const per = await Promise.all(
    Array.from({ length: clients }, async () => {
      const out: StreamResult[] = [];
      for (let i = 0; i < perClient && !signal.aborted; i++) {
        out.push(await streamRequest({ baseUrl: s.baseUrl, prompt: randomTokens(seed++, promptTokens), maxTokens: gen, signal }));
      }
      return out;
    }),
  );
  const rs = per.flat();
  record(rs);
  return { rs, wallMs: performance.now() - start };
}

interface Snap {
  hist: HistSnapshot;
  hydrate: HistSnapshot;
  tickets: number;
  blocked: number;
}

async function snap(s: BenchServer): Promise<Snap> {
  const text = await scrape(s.baseUrl);
  return { hist: histogram(text, HIST), hydrate: histogram(text, HYDRATE), tickets: sampleSum(text, 'inferflux_kv_tickets_total'), blocked: sampleSum(text, 'inferflux_kv_blocked_tickets_total') };
}

/** The gateway observes the histogram when Done arrives, which may trail the client's [DONE]. */
async function snapAfter(s: BenchServer, before: Snap, expected: number): Promise<Snap> {
  const until = performance.now() + 3000;
  for (;;) {
    const now = await snap(s);
    if (now.hist.count - before.hist.count >= expected || performance.now() > until) return now;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Client side: 1st -> 2nd token gap (prefill worker -> decode worker), and the median later gap. */
function clientGaps(rs: StreamResult[]): { gap12: number[]; itl: number[] } {
  const gap12: number[] = [];
  const itl: number[] = [];
  for (const r of rs.filter((x) => x.ok && x.chunkMs.length >= 3)) {
    gap12.push(r.chunkMs[1]! - r.chunkMs[0]!);
    const later = r.chunkMs.slice(2).map((t, i) => t - r.chunkMs[i + 1]!);
    itl.push(median(later));
  }
  return { gap12, itl };
}

interface TransferRow {
  label: string;
  hist: HistSnapshot;
  exactMs: number[];
  hydrate: HistSnapshot;
  /** c=1 only: each request's exact hydration time. */
  hydrateExactMs: number[];
  gap12: number[];
  itl: number[];
  tickets: number;
  blocked: number;
  ttftMs: number[];
}

function printTransferHeader(): void {
  say('  prompt  c  rep   n | hist p50   p99      mean  | exact(c=1) p50  p99 | hydrate p50  p99 | client 1->2 p50  p99 | ITL p50 | TTFT p50 | tickets blocked');
}

function printTransferRow(r: TransferRow): void {
  const e = summarize(r.exactMs);
  const g = summarize(r.gap12);
  const mean = r.hist.count > 0 ? (r.hist.sum / r.hist.count) * 1000 : Number.NaN;
  say(
    `  ${r.label} ${String(r.hist.count).padStart(3)} | ${fmtBound(bucketQuantile(r.hist, 50)).padEnd(8)} ${fmtBound(bucketQuantile(r.hist, 99)).padEnd(8)} ${f1(mean).padStart(6)}ms` +
      ` | ${r.exactMs.length > 0 ? `${f1(e.p50).padStart(9)} ${f1(e.p99).padStart(6)}` : '        -      -'}` +
      ` | ${hydrateCell(r).padStart(16)}` +
      ` | ${f1(g.p50).padStart(15)} ${f1(g.p99).padStart(6)} | ${f1(median(r.itl)).padStart(7)} | ${f1(median(r.ttftMs)).padStart(8)} | ${String(r.tickets).padStart(7)} ${String(r.blocked).padStart(7)}`,
  );
}

/** Hydration p50/p99: exact per request at c=1, bucket upper bounds otherwise. */
function hydrateCell(r: TransferRow): string {
  if (r.hydrateExactMs.length > 0) {
    const h = summarize(r.hydrateExactMs);
    return `${f1(h.p50)} ${f1(h.p99)}`;
  }
  return `${fmtBound(bucketQuantile(r.hydrate, 50))} ${fmtBound(bucketQuantile(r.hydrate, 99))}`;
}

/** One transfer measurement: c=1 scrapes after every request (exact per-request times). */
async function transferLevel(s: BenchServer, label: string, clients: number, perClient: number, promptTokens: number, gen: number): Promise<TransferRow> {
  const before = await snap(s);
  const exactMs: number[] = [];
  const hydrateExactMs: number[] = [];
  let rs: StreamResult[] = [];
  if (clients === 1) {
    for (let i = 0; i < perClient; i++) {
      const b = await snap(s);
      const one = await level(s, 1, 1, promptTokens, gen);
      rs = rs.concat(one.rs);
      const a = await snapAfter(s, b, 1);
      if (a.hist.count - b.hist.count === 1) exactMs.push((a.hist.sum - b.hist.sum) * 1000);
      if (a.hydrate.count - b.hydrate.count === 1) hydrateExactMs.push((a.hydrate.sum - b.hydrate.sum) * 1000);
    }
  } else {
    rs = (await level(s, clients, perClient, promptTokens, gen)).rs;
  }
  const after = await snapAfter(s, before, rs.filter((r) => r.ok).length);
  const { gap12, itl } = clientGaps(rs);
  return {
    label, hist: histDelta(after.hist, before.hist), exactMs, hydrate: histDelta(after.hydrate, before.hydrate), hydrateExactMs, gap12, itl,
    tickets: after.tickets - before.tickets, blocked: after.blocked - before.blocked,
    ttftMs: rs.filter((r) => r.ok).map((r) => r.ttftMs),
  };
}

function mergeHist(hs: HistSnapshot[]): HistSnapshot {
  const base = hs[0]!;
  return {
    les: base.les,
    counts: base.les.map((_, i) => hs.reduce((a, h) => a + (h.counts[i] ?? 0), 0)),
    sum: hs.reduce((a, h) => a + h.sum, 0),
    count: hs.reduce((a, h) => a + h.count, 0),
  };
}

async function stop(s: BenchServer, name: string): Promise<void> {
  const r = await s.stop();
  say(`  ${name}: SIGTERM -> exit code ${r.code}${r.signal ? ` signal ${r.signal}` : ''} in ${r.ms} ms${r.code === 0 ? '' : '  UNCLEAN'}`);
  if (r.code !== 0) failures++;
}

/** Server log lines about hand-offs (not shipped, never arrived, ring full): evidence for part B. */
function handoffLog(s: BenchServer): string[] {
  return s.log.filter((l) => /hand-off|KV ring|KV frame/i.test(l));
}

async function warm(s: BenchServer): Promise<void> {
  await level(s, 1, 1, 32, 4);
}

// ---- A. transfer latency --------------------------------------------------------------------------

async function partA(): Promise<TransferRow[]> {
  say('\n## A. KV transfer latency, disaggregated 1 prefill + 1 decode, ring 64 MiB (default)');
  const s = await startServer({ env: DISAGG });
  const rows: TransferRow[] = [];
  try {
    say(`  server: ${s.sizing.replace(/^.*\): /, '')}`);
    await warm(s);
    printTransferHeader();
    for (let rep = 1; rep <= REPEATS; rep++) {
      for (const size of SIZES) {
        for (const l of TRANSFER_LEVELS) {
          const row = await transferLevel(s, `${String(size).padStart(6)} ${String(l.clients).padStart(2)} ${String(rep).padStart(4)}`, l.clients, l.perClient(size), size, TRANSFER_GEN);
          printTransferRow(row);
          rows.push(row);
        }
      }
    }
    for (const l of handoffLog(s)) say(`    server log: ${l}`);
  } finally {
    await stop(s, 'disaggregated (64 MiB ring)');
  }
  return rows;
}

// ---- B. small rings -------------------------------------------------------------------------------

async function partB(): Promise<TransferRow[]> {
  say('\n## B. Small KV rings: blocked tickets counted and retried');
  const rows: TransferRow[] = [];
  const configs = [
    { ring: 48 * MiB, runs: [{ size: 2000, clients: 2, perClient: 1 }] },
    // 4 prompts of 128 tokens fill one 512-token batch, so their hand-offs arrive together.
    { ring: 4 * MiB, runs: [{ size: 128, clients: 4, perClient: 2 }, { size: 2000, clients: 1, perClient: 1 }] },
  ];
  for (const c of configs) {
    const s = await startServer({ env: { ...DISAGG, INFERFLUX_KV_RING_BYTES: String(c.ring) } });
    try {
      say(`  ring ${c.ring / MiB} MiB; server: ${s.sizing.replace(/^.*\): /, '')}`);
      await warm(s);
      printTransferHeader();
      for (const r of c.runs) {
        const tooLarge = r.size * KV_BYTES_PER_TOKEN > c.ring;
        if (tooLarge) {
          // The fault path: the frame can never fit. Expected: the decode worker prefills the prompt
          // itself after its 10 s wait (~40 s in all). Probed with its own cap; an outcome other
          // than success is a server finding, reported here, not a failed measurement.
          const probe = await streamRequest({ baseUrl: s.baseUrl, prompt: randomTokens(seed++, r.size), maxTokens: TRANSFER_GEN, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
          const what = probe.ok ? `ok, 1->2 gap ${f1(probe.chunkMs[1]! - probe.chunkMs[0]!)} ms` : probe.aborted ? `FINDING: no 2nd token within ${PROBE_TIMEOUT_MS / 1000} s (${probe.chunkMs.length} token(s) streamed, then nothing)` : `FINDING: ${probe.error}`;
          say(`  ${r.size}-token prompt, state ~${((r.size * KV_BYTES_PER_TOKEN) / MiB).toFixed(0)} MiB > ring: TTFT ${f1(probe.ttftMs)} ms; ${what}`);
          continue;
        }
        const row = await transferLevel(s, `${String(r.size).padStart(6)} ${String(r.clients).padStart(2)} ${'-'.padStart(4)}`, r.clients, r.perClient, r.size, TRANSFER_GEN);
        printTransferRow(row);
        rows.push(row);
      }
      const lines = handoffLog(s);
      for (const l of lines.slice(0, 6)) say(`    server log: ${l}`);
      if (lines.length > 6) say(`    server log: ... ${lines.length - 6} more hand-off line(s)`);
    } finally {
      await stop(s, `disaggregated (${c.ring / MiB} MiB ring)`);
    }
  }
  return rows;
}

// ---- C. mode choice -------------------------------------------------------------------------------

interface ModeLevel {
  mode: 'unified' | 'disaggregated';
  clients: number;
  tokPerS: number;
  ttft: number[];
}

async function modeServer(mode: ModeLevel['mode']): Promise<ModeLevel[]> {
  const s = await startServer({ env: mode === 'unified' ? UNIFIED : DISAGG });
  const out: ModeLevel[] = [];
  try {
    await warm(s);
    for (const c of MODE_LEVELS) {
      const { rs, wallMs } = await level(s, c, MODE_PER_CLIENT, MODE_PROMPT, MODE_GEN);
      const ok = rs.filter((r) => r.ok);
      const tokens = ok.reduce((a, r) => a + r.completionTokens, 0);
      out.push({ mode, clients: c, tokPerS: tokens / (wallMs / 1000), ttft: ok.map((r) => r.ttftMs) });
      say(`  ${mode.padEnd(13)} c=${c}  ${f1(tokens / (wallMs / 1000)).padStart(6)} tok/s  TTFT p50 ${f1(summarize(ok.map((r) => r.ttftMs)).p50)} ms  (${ok.length}/${rs.length} ok)   [${s.sizing.replace(/^.*\): /, '')}]`);
    }
  } finally {
    await stop(s, mode);
  }
  return out;
}

async function partC(): Promise<ModeLevel[]> {
  say(`\n## C. Mode choice: ${MODE_PROMPT}-token prompts, ${MODE_GEN} generated, ignore_eos, greedy, ${MODE_PER_CLIENT} requests per client`);
  const all: ModeLevel[] = [];
  for (let rep = 1; rep <= REPEATS; rep++) {
    const order: ModeLevel['mode'][] = rep % 2 === 1 ? ['unified', 'disaggregated'] : ['disaggregated', 'unified'];
    say(`  rep ${rep}:`);
    for (const m of order) all.push(...(await modeServer(m)));
  }
  return all;
}

// ---- report ---------------------------------------------------------------------------------------

function summaryA(rows: TransferRow[]): void {
  say('\n## Summary');
  say('  A (64 MiB ring), pooled over repetitions; p99 range = lowest..highest per-rep bucket p99:');
  for (const size of SIZES) {
    for (const l of TRANSFER_LEVELS) {
      const mine = rows.filter((r) => r.label.startsWith(`${String(size).padStart(6)} ${String(l.clients).padStart(2)} `));
      if (mine.length === 0) continue;
      const h = mergeHist(mine.map((r) => r.hist));
      const p99s = mine.map((r) => bucketQuantile(r.hist, 99));
      const exact = summarize(mine.flatMap((r) => r.exactMs));
      const tickets = mine.reduce((a, r) => a + r.tickets, 0);
      const blocked = mine.reduce((a, r) => a + r.blocked, 0);
      say(
        `    ${String(size).padStart(4)} tok c=${l.clients}: n=${h.count} p50 ${fmtBound(bucketQuantile(h, 50))} p99 ${fmtBound(bucketQuantile(h, 99))} (per rep ${fmtBound(Math.min(...p99s))}..${fmtBound(Math.max(...p99s))})` +
          `, <=5ms ${pct(shareAtOrBelow(h, 0.005))}${exact.n > 0 ? `, exact c=1 p50 ${f1(exact.p50)} max ${f1(Math.max(...mine.flatMap((r) => r.exactMs)))} ms` : ''}` +
          `, client 1->2 p50 ${f1(summarize(mine.flatMap((r) => r.gap12)).p50)} ms, blocked ${blocked}/${tickets} = ${pct(tickets > 0 ? blocked / tickets : Number.NaN)}`,
      );
    }
  }
  const big = mergeHist(rows.filter((r) => r.label.startsWith('  2000')).map((r) => r.hist));
  const tickets = rows.reduce((a, r) => a + r.tickets, 0);
  const blocked = rows.reduce((a, r) => a + r.blocked, 0);
  const p99 = bucketQuantile(big, 99);
  say(`  target (d) 2k-token transfer P99 < 5 ms: bucket p99 ${fmtBound(p99)} -> ${p99 <= 0.005 ? 'MET' : 'NOT MET'} (${pct(shareAtOrBelow(big, 0.005))} of ${big.count} hand-offs <= 5 ms)`);
  // What the transfer is made of: moving the KV (hydration), then waiting for and running the
  // decode worker's next step, whose own length (ITL) is a floor no transfer can get under.
  const bigRows = rows.filter((r) => r.label.startsWith('  2000'));
  const hyd = summarize(bigRows.flatMap((r) => r.hydrateExactMs));
  const hydHist = mergeHist(bigRows.map((r) => r.hydrate));
  const itl = summarize(bigRows.flatMap((r) => r.itl));
  say(
    `  2k-token transfer parts: hydration (hand-off -> state loaded) exact c=1 p50 ${f1(hyd.p50)} p99 ${f1(hyd.p99)} ms, all levels bucket p99 ${fmtBound(bucketQuantile(hydHist, 99))}; ` +
      `one decode step (ITL p50 at these levels) ${f1(itl.p50)} ms`,
  );
  say(`  target (d) blocked < 1%: ${blocked}/${tickets} = ${pct(tickets > 0 ? blocked / tickets : Number.NaN)} -> ${tickets > 0 && blocked / tickets < 0.01 ? 'MET' : 'NOT MET'}`);
}

function summaryC(levels: ModeLevel[]): void {
  say(`  C mode choice (tok/s best and range over ${REPEATS} server(s) per mode; TTFT pooled over repetitions):`);
  const best: Record<string, number> = {};
  for (const c of MODE_LEVELS) {
    for (const mode of ['unified', 'disaggregated'] as const) {
      const mine = levels.filter((l) => l.mode === mode && l.clients === c);
      const tps = mine.map((l) => l.tokPerS);
      const t = summarize(mine.flatMap((l) => l.ttft));
      best[`${mode}${c}`] = Math.max(...tps);
      say(`    c=${c} ${mode.padEnd(13)} ${f1(Math.max(...tps)).padStart(6)} tok/s (range ${f1(Math.min(...tps))}..${f1(Math.max(...tps))})  TTFT p50 ${f1(t.p50)} p95 ${f1(t.p95)} ms (n=${t.n})`);
    }
    const ratio = best[`disaggregated${c}`]! / best[`unified${c}`]!;
    say(`    c=${c} disaggregated / unified tok/s (best vs best) = ${ratio.toFixed(2)}`);
  }
  const faster = MODE_LEVELS.every((c) => best[`unified${c}`]! >= best[`disaggregated${c}`]!) ? 'unified' : MODE_LEVELS.every((c) => best[`disaggregated${c}`]! > best[`unified${c}`]!) ? 'disaggregated' : 'mixed';
  say(`  faster mode on this machine: ${faster} (the default is scheduler.prefill_pool_size: 0 = unified)`);
}

async function main(): Promise<void> {
  say('# bench/disaggregated.ts: KV hand-off latency and blocked tickets (issue 3 item 6d), unified vs disaggregated (item 2)');
  say(`model: ${await benchModel()}`);
  say(`code: ${provenance()}`);
  say(`repetitions: ${REPEATS}; transfer requests generate ${TRANSFER_GEN} tokens; histogram buckets (s): 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5`);
  const a = PARTS.has('A') ? await partA() : [];
  const b = PARTS.has('B') ? await partB() : [];
  const c = PARTS.has('C') ? await partC() : [];
  if (PARTS.has('A')) summaryA(a);
  const bt = b.reduce((x, r) => x + r.tickets, 0);
  const bb = b.reduce((x, r) => x + r.blocked, 0);
  if (PARTS.has('B')) say(`  B small rings: ${bb} blocked attempt(s) over ${bt} shipped ticket(s) (see the rows above)`);
  if (PARTS.has('C')) summaryC(c);
  say(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s; ${failures} failure(s)`);
}

main().then(
  () => process.exit(failures === 0 ? 0 : 1),
  (err: unknown) => {
    say(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
