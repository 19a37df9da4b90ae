/**
 * Ollama's model management over the local models directory (src/runtime/models): `POST /api/pull`
 * (NDJSON progress in Ollama's shape, or one object with `stream: false`), `POST /api/copy` and
 * `DELETE /api/delete`. Pulled models are files on disk; serving one is the model registry's
 * job (load it by its path). Copy and delete also take created models (presets, create.ts).
 * `/api/push` stays 501: there is no registry to push to.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError, errorBody } from '../../../errors.js';
import { ModelStore, type StoredModel } from '../../../runtime/models/model-store.js';
import { checkModelName } from '../../../runtime/models/model-ref.js';
import { PresetStore } from '../../../runtime/models/preset-store.js';
import { resolveModelName, servesName } from '../../generation/preset.js';
import { pullModel, type PullEvent, type PullSettings } from '../../../runtime/models/pull.js';
import { readJsonBody } from '../../body.js';
import { onAbort } from '../../exchange.js';
import { ndjsonStream } from '../../ndjson.js';
import { sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import type { CopyRequest, DeleteRequest, PullRequestBody } from './schema.js';

export function pullSettingsOf(deps: HttpDeps): PullSettings {
  const c = deps.config;
  return { modelsDir: c.server.modelsDir, hubUrl: c.pull.hubUrl, token: c.pull.hubToken, net: { allowedPrivateHosts: c.pull.allowedPrivateHosts } };
}

/** A pull event as Ollama's `/api/pull` lines say it; null for events Ollama has no line for. */
export function ollamaPullLine(ev: PullEvent): Record<string, unknown> | null {
  switch (ev.kind) {
    case 'resolving':
      return { status: 'pulling manifest' };
    case 'progress':
      return { status: `downloading ${ev.label}`, digest: ev.label, total: ev.total ?? 0, completed: ev.completed };
    case 'verifying':
      return { status: 'verifying sha256 digest' };
    case 'writing':
      return { status: 'writing manifest' };
    case 'done':
      return { status: 'success' };
    case 'resolved':
    case 'attempt':
    case 'validating':
      return null;
    default: {
      const never: never = ev;
      return never;
    }
  }
}

function nameOf(body: { model?: string; name?: string }): string {
  const name = body.model ?? body.name;
  if (name === undefined) throw new InferFluxError('invalid_request', "Missing required parameter: 'model'.", { param: 'model' });
  return name;
}

export function pullHandler(deps: HttpDeps, validate: Validator<PullRequestBody>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const ref = nameOf(body);
    // The client leaving cancels the download; the partial file stays for the next pull.
    const abort = new AbortController();
    onAbort(res, () => abort.abort());
    const settings = pullSettingsOf(deps);
    if (body.stream === false) {
      await pullModel(settings, { ref, signal: abort.signal });
      sendJson(res, 200, { status: 'success' });
      return;
    }
    // Progress lines are a few per second and small: backpressure needs no pausing here.
    const stream = ndjsonStream(res, { maxBufferedBytes: deps.config.server.sseMaxBufferedBytes, pause: () => undefined, resume: () => undefined });
    let last: Record<string, unknown> | null = null;
    // The stream opens once the reference is resolved: a missing quant, an unknown repository or
    // a gated one (hub_access_denied) is a plain error with its real status (404, 403), not a
    // 200 whose last line is the error.
    let resolved = false;
    try {
      await pullModel(settings, {
        ref,
        signal: abort.signal,
        onEvent: (ev) => {
          if (ev.kind === 'resolved') resolved = true;
          const line = ollamaPullLine(ev);
          if (line === null) return;
          if (!resolved) {
            last = line;
            return;
          }
          stream.open();
          if (last !== null) stream.send({ data: last });
          last = line;
        },
      });
      stream.end(last === null ? [] : [{ data: last }]);
    } catch (err) {
      const e = InferFluxError.from(err);
      if (!stream.isOpen) throw e; // before the first line: a plain error with its real status
      if (last !== null) stream.send({ data: last });
      stream.fail({ data: errorBody('ollama', e) }, e);
    }
  };
}

/** A created model (preset) is copied as a preset; a pulled one as a second manifest of its file. */
export function copyHandler(deps: HttpDeps, validate: Validator<CopyRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const { preset } = await resolveModelName(deps, body.source);
    if (preset) {
      if (servesName(deps.gateway, body.destination)) {
        throw new InferFluxError('invalid_request', `'${body.destination}' is a model this server serves; copy to a name of its own.`, { param: 'destination' });
      }
      await new PresetStore(deps.config.server.modelsDir).put({ ...preset, name: checkModelName(body.destination, 'destination'), created_at: new Date().toISOString() });
    } else {
      await new ModelStore(deps.config.server.modelsDir).copy(body.source, body.destination);
    }
    sendJson(res, 200, {});
  };
}

/** A created model (preset) first, else a pulled model's manifest (and its file when no other name uses it). */
export function deleteHandler(deps: HttpDeps, validate: Validator<DeleteRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const name = nameOf(body);
    if (!(await new PresetStore(deps.config.server.modelsDir).remove(name))) await new ModelStore(deps.config.server.modelsDir).remove(name);
    sendJson(res, 200, {});
  };
}

/** Pulled models as `/api/tags` entries (after the served ones), so Ollama clients see what they pulled. */
export async function storedTagEntries(deps: HttpDeps, servedNames: ReadonlySet<string>): Promise<Record<string, unknown>[]> {
  let stored: StoredModel[];
  try {
    stored = await new ModelStore(deps.config.server.modelsDir).list();
  } catch {
    return []; // an unreadable models directory hides pulled models, not the served ones
  }
  return stored
    .filter((m) => !servedNames.has(m.name))
    .map((m) => ({
      name: m.name,
      model: m.name,
      size: m.size,
      digest: m.sha256,
      modified_at: m.pulled_at,
      details: { parent_model: '', format: 'gguf', family: m.architecture ?? '', families: m.architecture ? [m.architecture] : [], parameter_size: '', quantization_level: m.quant ?? '' },
    }));
}
