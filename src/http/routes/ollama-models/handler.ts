/**
 * Ollama's model routes: `/api/tags` (models on disk), `/api/show` (details, GGUF `model_info`,
 * chat template), `/api/ps` (models loaded), `/api/version`, and the model-management route that
 * answers 501 (push; pull, copy and delete are in manage.ts, create in create.ts). Everything about a model comes from its GGUF header
 * (read once per file through the facade) and the serving state; a created model (preset) is
 * described by its base plus what the preset adds.
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
import { resolveModelName } from '../../generation/preset.js';
import { PresetStore, type ModelPreset } from '../../../runtime/models/preset-store.js';
import { renderModelfile, renderParameters } from '../../../runtime/models/modelfile.js';

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
    const stored = await storedTagEntries(deps, new Set(served.map((e) => e.name)));
    sendJson(res, 200, { models: [...served, ...stored, ...(await presetTagEntries(deps, all))] });
  };
}

/** Created models (presets) as `/api/tags` entries, described by their base when it is served. */
async function presetTagEntries(deps: HttpDeps, served: Awaited<ReturnType<typeof listed>>[]): Promise<Record<string, unknown>[]> {
  let presets: ModelPreset[];
  try {
    presets = await new PresetStore(deps.config.server.modelsDir).list();
  } catch {
    return []; // an unreadable presets directory hides presets, not the served models
  }
  return presets.map((p) => {
    const base = served.find((s) => s.m.id === p.from);
    const name = ollamaName(p.name);
    return {
      name,
      model: name,
      size: base?.f.size ?? 0,
      digest: presetDigest(p),
      modified_at: p.created_at,
      details: base ? { ...details(base.m, base.f), parent_model: ollamaName(p.from) } : { parent_model: ollamaName(p.from), format: 'gguf', family: '', families: [], parameter_size: '', quantization_level: '' },
    };
  });
}

/** A preset's digest: the sha256 of what it holds (its stored JSON), new whenever it is created again. */
function presetDigest(p: ModelPreset): string {
  return createHash('sha256').update(JSON.stringify(p)).digest('hex');
}

/** What `/api/show` adds for a created model: Ollama's `system`, `parameters`, `messages`, `modelfile`, `license`. */
function presetShow(p: ModelPreset): Record<string, unknown> {
  return {
    system: p.system ?? '',
    parameters: renderParameters(p.parameters),
    messages: p.messages,
    modelfile: renderModelfile(p),
    ...(p.license.length > 0 ? { license: p.license.join('\n') } : {}),
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
    const { model: id, preset } = await resolveModelName(deps, name);
    const m = deps.gateway.model(modelIdFor(deps.gateway, id));
    // Non-verbose: large arrays (the vocabulary, merges, scores) come back empty, as Ollama does.
    const f = await deps.gateway.modelFile(m.id, { maxArray: body.verbose === true ? Infinity : 0 });
    const license = f.metadata['general.license'];
    sendJson(res, 200, {
      ...(typeof license === 'string' ? { license } : {}),
      template: f.chatTemplate,
      details: preset ? { ...details(m, f), parent_model: ollamaName(preset.from) } : details(m, f),
      // Ollama's show adds the parameter count to the GGUF keys; `metadata` is the summary /v1/models/{id} gives.
      model_info: { ...f.metadata, 'general.parameter_count': m.parameterCount },
      capabilities: ollamaCapabilities(m),
      metadata: modelMetadataView(m),
      modified_at: preset ? preset.created_at : new Date(f.modifiedMs).toISOString(),
      ...(preset ? presetShow(preset) : {}),
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
 * The Ollama routes this server does not serve (index.ts OLLAMA_NOT_IMPLEMENTED: push):
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
