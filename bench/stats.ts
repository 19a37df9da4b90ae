/**
 * Small statistics helpers for the benchmark. Percentiles use the nearest-rank method: the p-th
 * percentile of n sorted values is the value at rank ceil(p/100 * n) (1-based), so it is always
 * one of the measured values, never an interpolation between two of them.
 */

/** Nearest-rank percentile of `values` (any order), `p` in (0, 100]. NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.max(1, rank) - 1]!;
}

export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly mean: number;
}

export function summarize(values: readonly number[]): Summary {
  const mean = values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
  return {
    n: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    mean,
  };
}

/** Median of a list (nearest-rank, so the lower middle value for even counts). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}
