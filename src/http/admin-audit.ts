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
  /** The model and LoRA adapter the change is about, when it is about one. */
  model?: string | undefined;
  adapter?: string | undefined;
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
    ...(outcome.model !== undefined ? { model: outcome.model } : {}),
    ...(outcome.adapter !== undefined ? { adapter: outcome.adapter } : {}),
    traceparent: ctx.traceparent,
  });
}
