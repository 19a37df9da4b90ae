/**
 * The audit line of an admin API call, in one shape for every admin route: who (key id and tenant,
 * never the key), which route, the outcome and what changed.
 */
import type { AuditSink, RequestContext } from './types.js';

export interface AdminOutcome {
  status: number;
  /** What was done (`guardrails.update`, `cache.flush`, ...) or why it failed. */
  decision: string;
  detail?: string;
}

export function auditAdmin(audit: AuditSink | undefined, ctx: RequestContext, outcome: AdminOutcome): void {
  audit?.record({
    ts: new Date().toISOString(),
    event: 'admin',
    requestId: ctx.requestId,
    keyId: ctx.principal?.id,
    tenant: ctx.principal?.tenant,
    route: `${ctx.method.toUpperCase()} ${ctx.path}`,
    status: outcome.status,
    decision: outcome.decision,
    ...(outcome.detail !== undefined ? { detail: outcome.detail } : {}),
    traceparent: ctx.traceparent,
  });
}
