/**
 * Model listings: OpenAI's `/v1/models` and LM Studio's `/api/v0/models`, which adds type,
 * architecture, context length and load state so LM Studio clients can pick a model.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { ModelInfo } from '../../../generation/contract.js';
import { InferFluxError } from '../../../errors.js';
import { sendError, sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';

export function openAIModel(m: ModelInfo) {
  return { id: m.id, object: 'model', created: m.created, owned_by: m.ownedBy };
}

export function lmStudioModel(m: ModelInfo) {
  return {
    id: m.id,
    object: 'model',
    type: 'llm',
    publisher: m.ownedBy,
    arch: m.architecture,
    compatibility_type: 'gguf',
    state: m.ready ? 'loaded' : 'not-loaded',
    max_context_length: m.trainContextSize,
  };
}

function notFound(id: string): InferFluxError {
  return new InferFluxError('model_not_found', `The model '${id}' does not exist.`, { param: 'model' });
}

export function listHandler(deps: HttpDeps, shape: (m: ModelInfo) => object) {
  return (res: HttpResponse): void => {
    sendJson(res, 200, { object: 'list', data: deps.gateway.models().map(shape) });
  };
}

export function getHandler(deps: HttpDeps, shape: (m: ModelInfo) => object) {
  return (res: HttpResponse, ctx: RequestContext): void => {
    const id = ctx.params.id!;
    const m = deps.gateway.models().find((x) => x.id === id);
    if (m) sendJson(res, 200, shape(m));
    else sendError(res, notFound(id));
  };
}
