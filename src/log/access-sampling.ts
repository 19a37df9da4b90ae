/**
 * Which access-log lines are written (`server.log_sampling`): every error (status >= 400), and of
 * the successful requests the configured share, per tenant or overall. The decision hashes the
 * request id (FNV-1a, 32 bits), not a random draw: the same request is in or out whichever replica
 * or tool looks at it, and a test can count on a rate.
 */
export interface LogSampling {
  rate: number;
  tenants: Record<string, number>;
}

/** Whether this request's access line is written. */
export function accessLineSampled(sampling: LogSampling, requestId: string, tenant: string | undefined, status: number): boolean {
  if (status >= 400) return true;
  const rate = (tenant !== undefined ? sampling.tenants[tenant] : undefined) ?? sampling.rate;
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  return fnv1a32(requestId) / 0x1_0000_0000 < rate;
}

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
