/**
 * Runtime LoRA adapter management: list, load (path confined like admin model loads, file checked
 * against the base model before llama.cpp sees it) and unload (draining the adapter's requests).
 * Every change, and every refused change, is an audit line carrying the adapter
 * (`adapter.load`, `adapter.unload`, or `<decision>:error:<code>`).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { AdapterControl } from '../../../generation/contract.js';
import { auditAdmin } from '../../admin-audit.js';
import { readJsonBody } from '../../body.js';
import { sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { adminAdapterView, type AdapterLoad } from './schema.js';

async function audited<T>(deps: HttpDeps, ctx: RequestContext, decision: string, detail: string, who: { model?: string; adapter: string }, run: () => Promise<T> | T): Promise<T> {
  try {
    const out = await run();
    auditAdmin(deps.audit, ctx, { status: 200, decision, detail, ...who });
    return out;
  } catch (err) {
    const e = InferFluxError.from(err);
    auditAdmin(deps.audit, ctx, { status: e.status, decision: `${decision}:error:${e.code}`, detail, ...who });
    throw e;
  }
}

export function listAdapters(control: AdapterControl) {
  return (res: HttpResponse): void => {
    sendJson(res, 200, { object: 'list', data: control.list().map(adminAdapterView) });
  };
}

export function loadAdapter(deps: HttpDeps, control: AdapterControl, validate: Validator<AdapterLoad>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const scale = body.scale ?? 1;
    const detail = `model=${body.model} id=${body.id} path=${body.path} scale=${scale}`;
    const a = await audited(deps, ctx, 'adapter.load', detail, { model: body.model, adapter: body.id }, () =>
      control.load({ model: body.model, id: body.id, path: body.path, scale }),
    );
    sendJson(res, 201, adminAdapterView(a));
  };
}

export function unloadAdapter(deps: HttpDeps, control: AdapterControl) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const id = ctx.params.id!;
    const model = control.list().find((a) => a.id === id)?.model;
    await audited(deps, ctx, 'adapter.unload', `id=${id}`, { model, adapter: id }, () => control.unload(id));
    sendJson(res, 200, { id, object: 'adapter', deleted: true });
  };
}
