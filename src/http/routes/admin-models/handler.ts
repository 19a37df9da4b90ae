/**
 * Runtime model management: list, load, unload (draining) and set the default, through the
 * registry behind the gateway. Every change, and every refused change, is an audit line
 * (`model.load`, `model.unload`, `model.default`, or `<decision>:error:<code>`).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { ModelControl } from '../../../generation/contract.js';
import { auditAdmin } from '../../admin-audit.js';
import { readJsonBody } from '../../body.js';
import { sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { adminModelView, type ModelLoad } from './schema.js';

/** Runs one change and audits its outcome; a failure is audited, then answered with its error. */
async function audited<T>(deps: HttpDeps, ctx: RequestContext, decision: string, detail: string, run: () => Promise<T> | T): Promise<T> {
  try {
    const out = await run();
    auditAdmin(deps.audit, ctx, { status: 200, decision, detail });
    return out;
  } catch (err) {
    const e = InferFluxError.from(err);
    auditAdmin(deps.audit, ctx, { status: e.status, decision: `${decision}:error:${e.code}`, detail });
    throw e;
  }
}

export function listModels(deps: HttpDeps) {
  return (res: HttpResponse): void => {
    const models = deps.gateway.models();
    const used = models.filter((m) => m.state !== 'failed').reduce((n, m) => n + m.memoryBytes, 0);
    sendJson(res, 200, {
      object: 'list',
      data: models.map(adminModelView),
      memory: { estimated_used_bytes: used, budget_bytes: deps.config.runtime.memoryBudgetBytes },
    });
  };
}

export function loadModel(deps: HttpDeps, control: ModelControl, validate: Validator<ModelLoad>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const source = body.model !== undefined ? `model=${body.model}` : `path=${body.path}`;
    const detail = `id=${body.id ?? body.model} ${source}${body.default ? ' default=true' : ''}`;
    const m = await audited(deps, ctx, 'model.load', detail, () => control.load({ id: body.id, path: body.path, model: body.model, default: body.default === true }));
    sendJson(res, 201, adminModelView(m));
  };
}

export function unloadModel(deps: HttpDeps, control: ModelControl) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const id = ctx.params.id!;
    await audited(deps, ctx, 'model.unload', `id=${id}`, () => control.unload(id));
    sendJson(res, 200, { id, object: 'model', deleted: true });
  };
}

export function setDefaultModel(deps: HttpDeps, control: ModelControl) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const id = ctx.params.id!;
    const m = await audited(deps, ctx, 'model.default', `id=${id}`, () => control.setDefault(id));
    sendJson(res, 200, adminModelView(m));
  };
}
