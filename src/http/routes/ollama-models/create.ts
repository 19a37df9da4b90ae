/**
 * `POST /api/create`: a model preset (runtime/models/preset-store.ts) from a served model or
 * another preset, with a Modelfile's SYSTEM, PARAMETER, MESSAGE and LICENSE. Presets of presets
 * are flattened at creation (the new one names the served base, fields it does not set are
 * inherited), so a request resolves in one lookup. What this server cannot build is refused by
 * name with what to do instead: `files` (weights uploaded as blobs), `adapters`, `quantize`, and
 * a Go `template`.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import { checkModelName } from '../../../runtime/models/model-ref.js';
import { PresetStore, type ModelPreset, type PresetParameters } from '../../../runtime/models/preset-store.js';
import { readJsonBody } from '../../body.js';
import { resolveModelName, servesName } from '../../generation/preset.js';
import { ndjsonStream } from '../../ndjson.js';
import { sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { checkNumCtx, toSampling } from '../ollama-common/options.js';
import type { CreateRequest } from './schema.js';

function refuse(param: string, why: string): never {
  throw new InferFluxError('invalid_request', `'${param}' is not supported by /api/create here: ${why}`, { param });
}

const isSet = (o: Record<string, unknown> | undefined): boolean => o !== undefined && Object.keys(o).length > 0;

function refuseUnbuildable(body: CreateRequest): void {
  if (isSet(body.files)) refuse('files', 'models are not built from uploaded weights; get a GGUF with POST /api/pull (or `inferctl pull`), serve it with POST /v1/admin/models, then create from it.');
  if (isSet(body.adapters)) refuse('adapters', 'load a LoRA adapter with POST /v1/admin/adapters and name it per request (`model: "base:adapter"` or `adapter`).');
  if (body.quantize !== undefined && body.quantize !== '') refuse('quantize', 'this server does not quantize models; pull the quantization you want (owner/repo:Q4_K_M).');
  if (body.template !== undefined && body.template !== '') {
    refuse('template', "Go prompt templates are not evaluated here; the base model's own GGUF chat template is used.");
  }
}

/** The status lines Ollama streams while creating (the layers a preset has), then `success`. */
function statusLines(p: ModelPreset): string[] {
  const lines = ['reading model metadata', `using base model ${p.from}`];
  if (p.system !== null) lines.push('creating system layer');
  if (Object.keys(p.parameters).length > 0) lines.push('creating parameters layer');
  if (p.messages.length > 0) lines.push('creating messages layer');
  if (p.license.length > 0) lines.push('creating license layer');
  lines.push('writing manifest', 'success');
  return lines;
}

export function createHandler(deps: HttpDeps, validate: Validator<CreateRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const raw = body.model ?? body.name;
    if (raw === undefined) throw new InferFluxError('invalid_request', "Missing required parameter: 'model'.", { param: 'model' });
    const name = checkModelName(raw);
    refuseUnbuildable(body);
    if (body.from === undefined) throw new InferFluxError('invalid_request', "Missing required parameter: 'from' (the model to build on; a Modelfile's FROM).", { param: 'from' });
    if (servesName(deps.gateway, name)) {
      throw new InferFluxError('invalid_request', `'${raw}' is a model this server serves; a created model needs a name of its own.`, { param: 'model' });
    }
    // The base: a served model (its id) or a preset, whose fields the new one inherits.
    const base = await resolveModelName(deps, body.from);
    const served = deps.gateway.model(base.model); // 404 model_not_found for a name nothing answers to
    if (base.preset === null && !servesName(deps.gateway, body.from)) {
      // `base:adapter`: the gateway resolved the base; a preset keeping only that would drop the adapter.
      refuse('from', `'${body.from}' names a LoRA adapter of '${served.id}'; build on the model (from: '${served.id}') and pick the adapter per request.`);
    }
    const inherited = base.preset;
    const parameters = { ...inherited?.parameters, ...(body.parameters as PresetParameters | undefined) };
    // The same checks a request's options get: no sampler this server lacks, no context it cannot give.
    toSampling(parameters);
    checkNumCtx(parameters, served.contextSize);
    const license = body.license === undefined ? undefined : Array.isArray(body.license) ? body.license : [body.license];
    const preset = await new PresetStore(deps.config.server.modelsDir).put({
      name,
      from: served.id,
      system: body.system ?? inherited?.system ?? null,
      messages: body.messages ?? inherited?.messages ?? [],
      parameters,
      license: license ?? inherited?.license ?? [],
      created_at: new Date().toISOString(),
    });
    deps.log?.(`created model ${preset.name} from ${preset.from}`);
    if (body.stream === false) return sendJson(res, 200, { status: 'success' });
    const stream = ndjsonStream(res, { maxBufferedBytes: deps.config.server.sseMaxBufferedBytes, pause: () => undefined, resume: () => undefined });
    stream.open();
    const lines = statusLines(preset).map((status) => ({ data: { status } }));
    stream.end(lines);
  };
}
