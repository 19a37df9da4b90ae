/**
 * `node --import tsx bench/fairness.ts`: tenant fairness under a 10:1 load (issue 3, benchmark e).
 *
 * Two API keys, A and B. A runs 10x as many closed-loop clients as B; every client sends streaming
 * requests (short unique prompts, max_tokens 64, ignore_eos) one after another until the window
 * closes. After WARM_MS (everyone queued or running), the window runs for WINDOW_MS; generated
 * tokens per key in the window are counted two ways: content chunks that arrived in the window
 * (client side, one chunk = one token) and the `inferflux_tenant_tokens_total` deltas (server side,
 * counted when the engine reports progress, so it lags by up to one report). Share = A/(A+B).
 * Target: each share within 10% of equal (0.45..0.55) when both tenants are backlogged. Fair
 * share is work-conserving: a tenant whose clients cannot fill half the sequences gets what they
 * ask for (its ceiling, clients / sequences, is printed), and the other tenant uses the rest.
 *
 * Cases, each on a fresh server (default sizing; the sequence count is read from its log):
 *   - 20 vs 2 clients, keys on tenants A and B (the brief's load);
 *   - 80 vs 8 clients, tenants A and B (B alone can fill every sequence, so both stay backlogged);
 *   - the same two loads with both keys on ONE tenant: there is no switch that turns tenant
 *     fairness off, so one shared tenant (a single FIFO) is the measured "fairness off" contrast.
 *
 * Loopback only; every client loop is bounded in requests (MAX_REQUESTS_PER_CLIENT) and time (the
 * window's abort signal, which also cancels the requests in flight).
 */
import { performance } from 'node:perf_hooks';
import { benchModel, provenance, counterByLabel, randomTokens, runBench, say, startServer } from './server.js';
import { streamRequest } from './stream-client.js';

const WARM_MS = Number(process.env.BENCH_FAIR_WARM_S ?? 12) * 1000;
const WINDOW_MS = Number(process.env.BENCH_FAIR_WINDOW_S ?? 40) * 1000;
const MAX_TOKENS = 64;
const PROMPT_TOKENS = 32;
const MAX_REQUESTS_PER_CLIENT = 200;
const KEY_A = 'bench-key-tenant-a';
const KEY_B = 'bench-key-tenant-b';

interface CaseResult {
  name: string;
  oneTenant: boolean;
  /** B's ceiling: its clients / the server's sequences (one sequence per in-flight request). */
  ceilingB: number;
  clientShareB: number;
  metricShareB: number;
  tokensA: number;
  tokensB: number;
  errors: string[];
}

async function runCase(name: string, clientsA: number, clientsB: number, oneTenant: boolean): Promise<CaseResult> {
  const tenantA = oneTenant ? 'shared' : 'tenantA';
  const tenantB = oneTenant ? 'shared' : 'tenantB';
  const server = await startServer({
    env: { INFERFLUX_AUTH_ENABLED: 'true', INFERFLUX_API_KEYS: `${KEY_A}:generate|read@${tenantA},${KEY_B}:generate|read@${tenantB}` },
  });
  const stopAll = new AbortController();
  const hard = setTimeout(() => stopAll.abort(), WARM_MS + WINDOW_MS + 60_000);
  const errors: string[] = [];
  const inWindow = { A: 0, B: 0 };
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  try {
    const warm = await streamRequest({ baseUrl: server.baseUrl, prompt: 'warm up', maxTokens: 4, headers: { authorization: `Bearer ${KEY_A}` }, signal: AbortSignal.timeout(60_000) });
    if (!warm.ok) throw new Error(`warm-up failed: ${warm.error}`);
    let seed = 1;
    const client = async (who: 'A' | 'B', c: number): Promise<void> => {
      const key = who === 'A' ? KEY_A : KEY_B;
      for (let i = 0; i < MAX_REQUESTS_PER_CLIENT && !stopAll.signal.aborted; i++) {
        const r = await streamRequest({
          baseUrl: server.baseUrl,
          prompt: randomTokens(seed++ * 7919 + c, PROMPT_TOKENS),
          maxTokens: MAX_TOKENS,
          headers: { authorization: `Bearer ${key}` },
          signal: stopAll.signal,
          onChunk: (at) => {
            if (at >= windowStart && at < windowEnd) inWindow[who]++;
          },
        });
        if (!r.ok && !r.aborted) {
          errors.push(`${who}${c}: ${r.error}`);
          return;
        }
      }
    };
    const loops = [
      ...Array.from({ length: clientsA }, (_, c) => client('A', c)),
      ...Array.from({ length: clientsB }, (_, c) => client('B', 1000 + c)),
    ];
    await new Promise((r) => setTimeout(r, WARM_MS));
    const before = await counterByLabel(server.baseUrl, 'inferflux_tenant_tokens_total', 'tenant');
    windowStart = performance.now();
    windowEnd = windowStart + WINDOW_MS;
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const after = await counterByLabel(server.baseUrl, 'inferflux_tenant_tokens_total', 'tenant');
    stopAll.abort();
    await Promise.all(loops);
    const delta = (t: string): number => (after.get(t) ?? 0) - (before.get(t) ?? 0);
    const metricShareB = oneTenant ? Number.NaN : delta(tenantB) / (delta(tenantA) + delta(tenantB));
    // Sequences per worker as served: `auto` is fitted to memory at start and logged on its own line.
    const m = /(\d+) engine worker\(s\) per model x \d+ thread\(s\) x (?:up to )?(\d+) sequences/.exec(server.sizing);
    const fitted = server.log.map((l) => /sequences per worker: (\d+) \(auto/.exec(l)).find((x) => x !== null);
    const sequences = m ? Number(m[1]) * Number(fitted?.[1] ?? m[2]) : Number.NaN;
    const res: CaseResult = {
      name,
      oneTenant,
      ceilingB: Math.min(1, clientsB / sequences),
      clientShareB: inWindow.B / (inWindow.A + inWindow.B),
      metricShareB,
      tokensA: inWindow.A,
      tokensB: inWindow.B,
      errors,
    };
    say(
      `  ${name}: in ${WINDOW_MS / 1000} s, A ${inWindow.A} tok, B ${inWindow.B} tok (${((inWindow.A + inWindow.B) / (WINDOW_MS / 1000)).toFixed(1)} tok/s); ` +
        `share A/B client-side ${(1 - res.clientShareB).toFixed(2)}/${res.clientShareB.toFixed(2)}` +
        (oneTenant ? '' : `, metrics ${delta(tenantA)}/${delta(tenantB)} tok = ${(1 - metricShareB).toFixed(2)}/${metricShareB.toFixed(2)}`) +
        `; errors ${errors.length}`,
    );
    for (const e of errors.slice(0, 5)) say(`    error: ${e}`);
    return res;
  } finally {
    clearTimeout(hard);
    stopAll.abort();
    const stop = await server.stop();
    if (stop.code !== 0) say(`  WARNING: server exit code ${stop.code}, signal ${stop.signal}`);
  }
}

async function main(): Promise<number> {
  say(`model: ${await benchModel()}`);
  say(`code: ${provenance()}`);
  say(`workload: closed-loop streaming clients, ${PROMPT_TOKENS}-token prompts, ${MAX_TOKENS} tokens each (EOS ignored); warm ${WARM_MS / 1000} s, window ${WINDOW_MS / 1000} s`);
  const cases: [string, number, number, boolean][] = [
    ['20 vs 2 clients, two tenants', 20, 2, false],
    ['20 vs 2 clients, one shared tenant (fairness off)', 20, 2, true],
    ['80 vs 8 clients, two tenants', 80, 8, false],
    ['80 vs 8 clients, one shared tenant (fairness off)', 80, 8, true],
  ];
  const out: CaseResult[] = [];
  for (const [name, a, b, one] of cases) out.push(await runCase(name, a, b, one));
  say('');
  say('case | B share (client) | B share (metrics) | B ceiling (clients/sequences) | target 0.45..0.55 when both are backlogged');
  for (const r of out) {
    const ok = r.clientShareB >= 0.45 && r.clientShareB <= 0.55;
    const verdict = r.oneTenant ? 'contrast (no fair share)' : r.ceilingB < 0.5 ? `n/a: B cannot fill half (got ${(r.clientShareB / r.ceilingB).toFixed(2)} of its ceiling)` : ok ? 'met' : 'missed';
    say(`${r.name} | ${r.clientShareB.toFixed(2)} | ${Number.isFinite(r.metricShareB) ? r.metricShareB.toFixed(2) : '-'} | ${r.ceilingB.toFixed(2)} | ${verdict}`);
  }
  return out.some((r) => r.errors.length > 0) ? 1 : 0;
}

runBench(main);
