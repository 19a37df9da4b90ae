/**
 * Ollama's model routes: `/api/tags` (models on disk), `/api/show` (details, GGUF `model_info`,
 * chat template), `/api/ps` (models loaded), `/api/version`, and the model-management routes that
 * answer 501 (push, create; pull, copy and delete are in manage.ts). Everything about a model comes from its GGUF header
 * (read once per file through the facade) and the serving state.
 */
import { createHash } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { Gateway, ModelFileInfo, ModelInfo } from '../../../generation/contract.js';
import { readJsonBody } from '../../body.js';
import { sendError, sendJson } from '../../respond.js';
import { SERVER_VERSION } from '../../../version.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { modelIdFor, ollamaName } from '../ollama-common/names.js';
import { storedTagEntries } from './manage.js';
import type { ShowRequest } from './schema.js';
import { modelMetadataView } from '../admin-models/schema.js';

/** `7615616512` → `7.6B`, as Ollama prints parameter sizes. */
export function parameterSize(n: number): string {
  if (n <= 0) return 'unknown';
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [size, unit] of units) if (n >= size) return `${(n / size).toFixed(1).replace(/\.0$/, '')}${unit}`;
  return String(n);
}

function details(m: ModelInfo, f: ModelFileInfo) {
  return {
    parent_model: '',
    format: 'gguf',
    family: m.architecture,
    families: [m.architecture],
    parameter_size: parameterSize(m.parameterCount),
    quantization_level: f.quantization,
  };
}

/**
 * Ollama's digest is the sha256 of its manifest; a GGUF here has none, so this is the sha256 of
 * the file's identity (path, size, mtime): stable while the file is unchanged, new when it is
 * replaced, and free (hashing a multi-GB file per listing would not be).
 */
function digest(m: ModelInfo, f: ModelFileInfo): string {
  return createHash('sha256').update(`${m.path}\0${f.size}\0${f.modifiedMs}`).digest('hex');
}

async function listed(gateway: Gateway, m: ModelInfo) {
  const f = await gateway.modelFile(m.id, { maxArray: 0 });
  const name = ollamaName(m.id);
  return { m, f, entry: { name, model: name, size: f.size, digest: digest(m, f), details: details(m, f) } };
}

export function tagsHandler(deps: HttpDeps) {
  return async (res: HttpResponse): Promise<void> => {
    const all = await Promise.all(deps.gateway.models().map((m) => listed(deps.gateway, m)));
    const served = all.map(({ f, entry }) => ({ ...entry, modified_at: new Date(f.modifiedMs).toISOString() }));
    sendJson(res, 200, { models: [...served, ...(await storedTagEntries(deps, new Set(served.map((e) => e.name))))] });
  };
}

/** Models stay loaded while the server runs: `expires_at` is far in the future, as Ollama reports `keep_alive: -1`. */
const NEVER = '2318-01-01T00:00:00Z';

export function psHandler(deps: HttpDeps) {
  return async (res: HttpResponse): Promise<void> => {
    const ready = deps.gateway.models().filter((m) => m.ready);
    const all = await Promise.all(ready.map((m) => listed(deps.gateway, m)));
    // CPU inference: nothing is in VRAM.
    sendJson(res, 200, { models: all.map(({ m, entry }) => ({ ...entry, expires_at: NEVER, size_vram: 0, context_length: m.contextSize })) });
  };
}

export function showHandler(deps: HttpDeps, validate: Validator<ShowRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const name = body.model ?? body.name;
    if (name === undefined) throw new InferFluxError('invalid_request', "Missing required parameter: 'model'.", { param: 'model' });
    const m = deps.gateway.model(modelIdFor(deps.gateway, name));
    // Non-verbose: large arrays (the vocabulary, merges, scores) come back empty, as Ollama does.
    const f = await deps.gateway.modelFile(m.id, { maxArray: body.verbose === true ? Infinity : 0 });
    const license = f.metadata['general.license'];
    sendJson(res, 200, {
      ...(typeof license === 'string' ? { license } : {}),
      template: f.chatTemplate,
      details: details(m, f),
      // Ollama's show adds the parameter count to the GGUF keys; `metadata` is the summary /v1/models/{id} gives.
      model_info: { ...f.metadata, 'general.parameter_count': m.parameterCount },
      capabilities: ollamaCapabilities(m),
      metadata: modelMetadataView(m),
      modified_at: new Date(f.modifiedMs).toISOString(),
    });
  };
}

/** Ollama's capability names: `completion`, `tools`, `embedding` (`vision` never: no multimodal binding). */
function ollamaCapabilities(m: ModelInfo): string[] {
  const c = m.capabilities;
  return [...(c.completion ? ['completion'] : []), ...(c.tools ? ['tools'] : []), ...(c.embeddings ? ['embedding'] : [])];
}

export function versionHandler() {
  return (res: HttpResponse): void => sendJson(res, 200, { version: SERVER_VERSION });
}

/**
 * The Ollama routes this server does not serve (index.ts OLLAMA_NOT_IMPLEMENTED: push, create):
 * 501, naming what does the job here instead.
 */
export function notImplemented(what: string) {
  return (res: HttpResponse): void =>
    sendError(
      res,
      new InferFluxError(
        'not_implemented',
        `${what} is not implemented on this server; get a GGUF with POST /api/pull (or \`inferctl pull\`) and serve it with POST /v1/admin/models (or \`inferctl admin models --load NAME\`).`,
      ),
    );
}
