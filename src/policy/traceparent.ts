/**
 * W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header):
 * `version-traceid-parentid-flags`, lower-case hex. A valid incoming header is propagated as is;
 * an absent or invalid one is replaced by a fresh one, so every request and audit line has one.
 */
import { randomBytes } from 'node:crypto';

const V00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** Future versions may append fields after the flags (`-...`); version ff is forbidden. */
const FUTURE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);

export interface TraceParent {
  version: string;
  traceId: string;
  parentId: string;
  flags: string;
}

export function parseTraceparent(header: string): TraceParent | null {
  if (header.length < 55 || header.length > 512) return null;
  const m = V00.exec(header);
  let version = '00';
  let traceId: string;
  let parentId: string;
  let flags: string;
  if (m) {
    [, traceId, parentId, flags] = m as unknown as [string, string, string, string];
  } else {
    const f = FUTURE.exec(header);
    // Version 00 must be exactly 55 characters; only higher versions may carry more.
    if (!f || f[1] === 'ff' || f[1] === '00') return null;
    [, version, traceId, parentId, flags] = f as unknown as [string, string, string, string, string];
  }
  if (traceId === ZERO_TRACE || parentId === ZERO_PARENT) return null;
  return { version, traceId, parentId, flags };
}

export function newTraceparent(): string {
  // Not sampled (flags 00): we start the trace but make no sampling decision for the caller.
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00`;
}

/** The header to use for this request: the caller's when valid, else a new one. */
export function traceparentFor(header: string): string {
  return header !== '' && parseTraceparent(header) ? header : newTraceparent();
}
