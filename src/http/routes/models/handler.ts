/**
 * Model listings: OpenAI's `/v1/models` and LM Studio's `/api/v0/models`, which adds type,
 * architecture, context length and load state so LM Studio clients can pick a model. OpenAI's
 * shape gains the registry's view (capabilities, state, default) as extra fields, and
 * `/v1/models/{id}` the GGUF metadata (architecture, parameters, quantisation, context, MoE, template).
 * Created models (presets) of served models are listed after them, with `parent` and `preset: true`.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { Gateway, ModelInfo } from '../../../generation/contract.js';
import { InferFluxError } from '../../../errors.js';
import { sendError, sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import { modelMetadataView } from '../admin-models/schema.js';
import { resolveModelName } from '../../generation/preset.js';
import { PresetStore, type ModelPreset } from '../../../runtime/models/preset-store.js';

export function openAIModel(m: ModelInfo) {
  const e = m.backendExposure;
  const base = {
    id: m.id,
    object: 'model',
    created: m.created,
    owned_by: m.ownedBy,
    state: m.state,
    ready: m.ready,
    default: m.isDefault,
    capabilities: m.capabilities,
    backend_exposure: { requested: e.requested, exposed: e.exposed, provenance: e.provenance, skipped: e.skipped },
  };
  // Only with adapters loaded: the field (and the `base:adapter` entries) appear when there is something to pick.
  return m.adapters && m.adapters.length > 0 ? { ...base, adapters: m.adapters.map((a) => a.id) } : base;
}

/** A loaded LoRA adapter as a model clients can name (`base:adapter`), listed after its base. */
function openAIAdapterModel(m: ModelInfo, a: NonNullable<ModelInfo['adapters']>[number]) {
  return {
    id: `${m.id}:${a.id}`,
    object: 'model',
    created: Math.floor(Date.parse(a.loadedAt) / 1000),
    owned_by: m.ownedBy,
    state: a.state,
    ready: m.ready && a.state === 'ready',
    default: false,
    capabilities: m.capabilities,
    parent: m.id,
    adapter: { id: a.id, scale: a.scale, rank: a.rank, alpha: a.alpha, sha256: a.sha256 },
  };
}

/** A created model (preset, `POST /api/create`) as a model clients can name, listed after the served ones. */
function openAIPresetModel(base: ModelInfo, p: ModelPreset) {
  return {
    id: p.name,
    object: 'model',
    created: Math.floor(Date.parse(p.created_at) / 1000),
    owned_by: base.ownedBy,
    state: base.state,
    ready: base.ready,
    default: false,
    capabilities: base.capabilities,
    parent: base.id,
    preset: true,
  };
}

/** `/v1/models/{id}`: a model in detail, or a `base:adapter` or preset entry as listed. */
export function openAIModelGet(deps: HttpDeps) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const id = ctx.params.id!;
    const models = deps.gateway.models();
    const m = models.find((x) => x.id === id);
    if (m) return sendJson(res, 200, openAIModelDetail(m));
    for (const base of models) {
      const a = base.adapters?.find((x) => `${base.id}:${x.id}` === id);
      if (a) return sendJson(res, 200, openAIAdapterModel(base, a));
    }
    const { preset } = await resolveModelName(deps, id);
    const base = preset && models.find((x) => x.id === preset.from);
    if (preset && base) return sendJson(res, 200, openAIPresetModel(base, preset));
    sendError(res, notFound(id));
  };
}

/** `/v1/models`: every model, each followed by its adapters as `base:adapter` entries, then the presets of served models. */
export function openAIModelList(deps: HttpDeps) {
  return async (res: HttpResponse): Promise<void> => {
    const models = deps.gateway.models();
    const data: object[] = models.flatMap((m) => [openAIModel(m), ...(m.adapters ?? []).map((a) => openAIAdapterModel(m, a))]);
    let presets: ModelPreset[] = [];
    try {
      presets = await new PresetStore(deps.config.server.modelsDir).list();
    } catch {
      // an unreadable presets directory hides presets, not the served models
    }
    for (const p of presets) {
      const base = models.find((m) => m.id === p.from);
      if (base && !models.some((m) => m.id === p.name)) data.push(openAIPresetModel(base, p));
    }
    sendJson(res, 200, { object: 'list', data });
  };
}

/** One model in detail: the list entry plus what its GGUF header says. */
export function openAIModelDetail(m: ModelInfo) {
  return { ...openAIModel(m), metadata: modelMetadataView(m) };
}

/** LM Studio's model object; `quantization` is the dominant weight type in the GGUF (read once per file). */
export async function lmStudioModel(m: ModelInfo, gateway: Gateway) {
  const f = await gateway.modelFile(m.id, { maxArray: 0 });
  return {
    id: m.id,
    object: 'model',
    type: 'llm',
    publisher: m.ownedBy,
    arch: m.architecture,
    compatibility_type: 'gguf',
    quantization: f.quantization,
    state: m.ready ? 'loaded' : 'not-loaded',
    max_context_length: m.trainContextSize,
  };
}

type ModelShape = (m: ModelInfo, gateway: Gateway) => object | Promise<object>;

function notFound(id: string): InferFluxError {
  return new InferFluxError('model_not_found', `The model '${id}' does not exist.`, { param: 'model' });
}

export function listHandler(deps: HttpDeps, shape: ModelShape) {
  return async (res: HttpResponse): Promise<void> => {
    const data = await Promise.all(deps.gateway.models().map((m) => shape(m, deps.gateway)));
    sendJson(res, 200, { object: 'list', data });
  };
}

export function getHandler(deps: HttpDeps, shape: ModelShape) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const id = ctx.params.id!;
    const m = deps.gateway.models().find((x) => x.id === id);
    if (m) sendJson(res, 200, await shape(m, deps.gateway));
    else sendError(res, notFound(id));
  };
}
