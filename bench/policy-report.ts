/**
 * Tables of bench/policy-cost.ts: round-trip latency per side with on - off differences (pooled,
 * per repetition and paired request by request), streaming levels (TTFT, first SSE event, tok/s
 * best / median / range, ratios to `off`), and audit lines per event type.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { StreamResult } from './policy-client.js';
import { median, percentile, summarize } from './stats.js';

export type SideName = 'off' | 'on' | 'on-promptpii' | 'on-redis';

export interface StreamRun {
  wallMs: number;
  requests: StreamResult[];
}

export const say = (line: string): void => void process.stdout.write(`${line}\n`);
export const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');
export const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
export const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '-');
export const us = (ms: number): string => (Number.isFinite(ms) ? `${(ms * 1000).toFixed(0)} us` : '-');

export interface RoundTripReport {
  /** Side p50 - off p50, per side but `off`. */
  p50Diff: Map<SideName, number>;
}

export function reportRoundTrips(title: string, perRep: Map<SideName, number[]>[], names: SideName[]): RoundTripReport {
  say('');
  say(`${title}`);
  say(`  ${'side'.padEnd(12)} | ${'n'.padStart(5)} | ${'p50'.padStart(8)} | ${'p95'.padStart(8)} | ${'p99'.padStart(8)} | ${'mean'.padStart(8)} | per-rep p50`);
  const pooled = new Map(names.map((n) => [n, perRep.flatMap((m) => m.get(n) ?? [])]));
  for (const n of names) {
    const s = summarize(pooled.get(n)!);
    const reps = perRep.map((m) => us(summarize(m.get(n) ?? []).p50)).join(', ');
    say(`  ${n.padEnd(12)} | ${String(s.n).padStart(5)} | ${us(s.p50).padStart(8)} | ${us(s.p95).padStart(8)} | ${us(s.p99).padStart(8)} | ${us(s.mean).padStart(8)} | ${reps}`);
  }
  const off = summarize(pooled.get('off')!);
  const p50Diff = new Map<SideName, number>();
  for (const n of names.filter((x) => x !== 'off')) {
    const on = summarize(pooled.get(n)!);
    const repDiffs = perRep.map((m) => summarize(m.get(n)!).p50 - summarize(m.get('off')!).p50);
    // Request i of each side ran back to back, so on[i] - off[i] cancels slow phases of the machine.
    const paired = perRep.flatMap((m) => m.get(n)!.map((t, i) => t - m.get('off')![i]!));
    say(`  paired (${n}[i] - off[i], adjacent requests): median ${us(median(paired))}, p25..p75 ${us(percentile(paired, 25))}..${us(percentile(paired, 75))}`);
    say(
      `  ${n} - off: p50 ${us(on.p50 - off.p50)}, p95 ${us(on.p95 - off.p95)}, mean ${us(on.mean - off.mean)}; ` +
        `ratio p50 ${f3(on.p50 / off.p50)}, p95 ${f3(on.p95 / off.p95)}; per-rep p50 diff ${us(Math.min(...repDiffs))}..${us(Math.max(...repDiffs))}`,
    );
    p50Diff.set(n, on.p50 - off.p50);
  }
  return { p50Diff };
}

export interface LevelReport {
  ttftP95: Map<SideName, number>;
  ttftP50: Map<SideName, number>;
  tokBest: Map<SideName, number>;
  tokMedian: Map<SideName, number>;
  errors: number;
}

export function reportLevel(title: string, perRep: Map<SideName, StreamRun>[], names: SideName[], sequential: boolean): LevelReport {
  say('');
  say(title);
  say(
    `  ${'side'.padEnd(12)} | ${'n'.padStart(3)} | ${'TTFT p50'.padStart(8)} | ${'TTFT p95'.padStart(8)} | ${'1st event p50/p95'.padStart(17)} | ` +
      `${'tok/s best'.padStart(10)} | ${'median'.padStart(7)} | ${'range'.padStart(13)} | prompt tok | err`,
  );
  const rep: LevelReport = { ttftP95: new Map(), ttftP50: new Map(), tokBest: new Map(), tokMedian: new Map(), errors: 0 };
  for (const n of names) {
    const runs = perRep.map((m) => m.get(n)!).filter(Boolean);
    const reqs = runs.flatMap((r) => r.requests);
    const ok = reqs.filter((q) => q.ok);
    const ttft = summarize(ok.map((q) => q.ttftMs));
    const first = summarize(ok.map((q) => q.firstEventMs));
    // c=1 runs are interleaved request by request, so their wall time is the sum of their requests.
    const tps = runs.map((r) => r.requests.reduce((a, q) => a + q.completionTokens, 0) / ((sequential ? r.requests.reduce((a, q) => a + (q.endMs - q.startMs), 0) : r.wallMs) / 1000));
    const errs = reqs.length - ok.length;
    rep.errors += errs;
    rep.ttftP50.set(n, ttft.p50);
    rep.ttftP95.set(n, ttft.p95);
    rep.tokBest.set(n, Math.max(...tps));
    rep.tokMedian.set(n, median(tps));
    say(
      `  ${n.padEnd(12)} | ${String(ok.length).padStart(3)} | ${f1(ttft.p50).padStart(8)} | ${f1(ttft.p95).padStart(8)} | ${`${f1(first.p50)} / ${f1(first.p95)}`.padStart(17)} | ` +
        `${f1(Math.max(...tps)).padStart(10)} | ${f1(median(tps)).padStart(7)} | ${`${f1(Math.min(...tps))}-${f1(Math.max(...tps))}`.padStart(13)} | ` +
        `${f1(summarize(ok.map((q) => q.promptTokens)).mean).padStart(10)} | ${errs}`,
    );
    for (const q of reqs.filter((x) => !x.ok).slice(0, 5)) say(`    error (${n}): ${q.error}`);
  }
  for (const n of names.filter((x) => x !== 'off')) {
    say(
      `  ${n}/off: TTFT p50 ${f3(rep.ttftP50.get(n)! / rep.ttftP50.get('off')!)}, TTFT p95 ${f3(rep.ttftP95.get(n)! / rep.ttftP95.get('off')!)}, ` +
        `tok/s best ${f3(rep.tokBest.get(n)! / rep.tokBest.get('off')!)}, median ${f3(rep.tokMedian.get(n)! / rep.tokMedian.get('off')!)}`,
    );
    if (!sequential) continue;
    // Sequential levels send request i of every side the same prompt back to back: the paired
    // difference cancels slow phases of the machine, which move a p95 of 30 by more than 5%.
    const paired = perRep.flatMap((m) => {
      const on = m.get(n)!.requests;
      const off = m.get('off')!.requests;
      return on.flatMap((q, i) => (q.ok && off[i]?.ok ? [q.ttftMs - off[i]!.ttftMs] : []));
    });
    say(`    paired TTFT ${n}[i] - off[i] (same prompt back to back): median ${f1(median(paired))} ms, p25..p75 ${f1(percentile(paired, 25))}..${f1(percentile(paired, 75))} ms, p95 ${f1(percentile(paired, 95))} ms`);
  }
  return rep;
}

/** Audit lines per event type, over every file of the log (rotation included). */
export function auditCounts(dir: string): string {
  const counts = new Map<string, number>();
  for (const f of readdirSync(dir).filter((x) => x.startsWith('audit.log'))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (line === '') continue;
      const e = (JSON.parse(line) as { event?: string }).event ?? '?';
      counts.set(e, (counts.get(e) ?? 0) + 1);
    }
  }
  return [...counts].sort().map(([k, v]) => `${k} ${v}`).join(', ') || 'empty';
}
