/**
 * Reading Prometheus text from `/metrics` for benchmarks: unlabelled counters and gauges, and
 * histograms (cumulative buckets, `_sum`, `_count`, summed over every label set) as snapshots whose
 * difference covers exactly the requests sent in between.
 *
 * Quantiles from buckets are upper bounds: the p-th percentile lies in the first bucket whose
 * cumulative count reaches rank ceil(p/100 * n), so all we can say is "<= that bucket's `le`" (and
 * "> the bucket below"). That is the resolution the exported histogram allows.
 */

export interface HistSnapshot {
  /** Upper bounds in seconds, ascending, `+Inf` last. */
  les: number[];
  /** Cumulative counts per bound. */
  counts: number[];
  sum: number;
  count: number;
}

export async function scrape(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** Sum of every sample of `name` (any labels, or none); 0 when the metric is absent. */
export function sampleSum(text: string, name: string): number {
  let total = 0;
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'gm');
  for (const m of text.matchAll(re)) total += Number(m[1]);
  return total;
}

export function histogram(text: string, name: string): HistSnapshot {
  const byLe = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{([^}]*)\\}\\s+(\\S+)`, 'gm');
  for (const m of text.matchAll(re)) {
    const le = /le="([^"]*)"/.exec(m[1]!);
    if (!le) continue;
    const bound = le[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(le[1]);
    byLe.set(bound, (byLe.get(bound) ?? 0) + Number(m[2]));
  }
  const les = [...byLe.keys()].sort((a, b) => a - b);
  return { les, counts: les.map((l) => byLe.get(l)!), sum: sampleSum(text, `${name}_sum`), count: sampleSum(text, `${name}_count`) };
}

/** after - before, bucket by bucket (a metric absent before counts as all zeros). */
export function histDelta(after: HistSnapshot, before: HistSnapshot): HistSnapshot {
  const prev = new Map(before.les.map((l, i) => [l, before.counts[i]!]));
  return {
    les: after.les,
    counts: after.counts.map((c, i) => c - (prev.get(after.les[i]!) ?? 0)),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/** Upper bound (seconds) of the bucket holding the p-th percentile; NaN without observations. */
export function bucketQuantile(h: HistSnapshot, p: number): number {
  if (h.count <= 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * h.count));
  for (let i = 0; i < h.les.length; i++) if (h.counts[i]! >= rank) return h.les[i]!;
  return Number.POSITIVE_INFINITY;
}

/** Share of observations at or below `le` seconds (must be one of the bucket bounds). */
export function shareAtOrBelow(h: HistSnapshot, le: number): number {
  const i = h.les.indexOf(le);
  if (i < 0) throw new RangeError(`${le} is not a bucket bound (${h.les.join(', ')})`);
  return h.count > 0 ? h.counts[i]! / h.count : Number.NaN;
}

/** `<=5ms` style label for a bucket bound in seconds. */
export function fmtBound(seconds: number): string {
  if (Number.isNaN(seconds)) return '-';
  if (!Number.isFinite(seconds)) return '>2.5s';
  return seconds < 1 ? `<=${+(seconds * 1000).toFixed(1)}ms` : `<=${seconds}s`;
}
