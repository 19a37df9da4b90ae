/**
 * `GET`/`PUT /v1/admin/fairness`: the live `runtime.fairness.*` settings (preemption, the
 * high-priority threshold, timeslices). A change applies at once, and may suspend running
 * requests right away; it lasts until restart (the config file holds the start-up value).
 * Scope `admin` through the RBAC table's `/v1/admin/*` row.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { auditAdmin } from '../../admin-audit.js';
import { readJsonBody } from '../../body.js';
import { sendJson } from '../../respond.js';
import type { Router } from '../../router.js';
import type { FairnessSettings } from '../../../generation/contract.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';

interface FairnessUpdate {
  enable_preemption?: boolean;
  high_priority_threshold?: number;
  max_timeslice_tokens?: number;
}

const updateSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    enable_preemption: { type: 'boolean' },
    high_priority_threshold: { type: 'integer', minimum: -1000, maximum: 1000 },
    max_timeslice_tokens: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  },
} as const;

function view(f: FairnessSettings) {
  return {
    object: 'fairness',
    enable_preemption: f.enablePreemption,
    high_priority_threshold: f.highPriorityThreshold,
    max_timeslice_tokens: f.maxTimesliceTokens,
  };
}

export function register(app: Router, deps: HttpDeps): void {
  const fairness = deps.gateway.fairness;
  if (!fairness) return;
  const validate = compileRequestSchema<FairnessUpdate>('PUT /v1/admin/fairness', updateSchema);
  app.get('/v1/admin/fairness', (res: HttpResponse) => sendJson(res, 200, view(fairness.get())));
  app.add('put', '/v1/admin/fairness', async (res: HttpResponse, ctx: RequestContext) => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const patch: Partial<FairnessSettings> = {};
    if (body.enable_preemption !== undefined) patch.enablePreemption = body.enable_preemption;
    if (body.high_priority_threshold !== undefined) patch.highPriorityThreshold = body.high_priority_threshold;
    if (body.max_timeslice_tokens !== undefined) patch.maxTimesliceTokens = body.max_timeslice_tokens;
    const now = await fairness.set(patch);
    auditAdmin(deps.audit, ctx, { status: 200, decision: 'fairness.update', detail: JSON.stringify(view(now)) });
    sendJson(res, 200, view(now));
  });
}
