/**
 * LoRA adapters on the main thread: which adapter files are loaded for which base model, at what
 * scale, and who is using them.
 *
 *   load ──▶ (path confined, file checked against the base in TypeScript, every engine worker of
 *             the base loads it into llama.cpp) ──▶ ready ──unload──▶ unloading ──drained──▶ (gone)
 *
 * Ids are unique over all models (`DELETE /v1/admin/adapters/{id}` names one). A request picks an
 * adapter by `base:adapter` or its `adapter` field and holds a lease on it while it runs; an unload
 * refuses new leases at once (503 `adapter_unloading`) and waits for the running ones, so nothing
 * is cut off. Engine workers apply adapters per context (actors/engine/adapter-gate.ts).
 *
 * `key` names what the KV depends on, the file's content and the scale, so caches (prefix KV,
 * response cache, placement fingerprints) keyed on it never mix adapters, and a reload of the same
 * file at the same scale may reuse what the earlier load cached.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InferFluxError } from '../errors.js';
import { GgufFormatError, readGgufHeader } from '../runtime/gguf/reader.js';
import { validateLoraFile } from '../runtime/gguf/lora.js';
import { checkModelPath } from './model-path.js';
import type { RegisteredModel } from './model-registry.js';

export type AdapterState = 'loading' | 'ready' | 'unloading';

export interface LoadedAdapter {
  readonly id: string;
  /** Base model id. */
  readonly model: string;
  /** Real path of the adapter GGUF. */
  readonly path: string;
  readonly scale: number;
  readonly sha256: string;
  readonly rank: number;
  readonly alpha: number;
  readonly targets: number;
  /** Content + scale: what KV computed under this adapter depends on. */
  readonly key: string;
  state: AdapterState;
  inflight: number;
  readonly loadedAt: number;
}

/** What the engine side needs: every engine worker of the base model loads the file into llama.cpp. */
export interface AdapterHost {
  loadAdapter(model: string, adapter: { path: string; sha256: string }): Promise<void>;
}

export interface AdapterLease {
  readonly adapter: LoadedAdapter;
  release(): void;
}

export interface AdapterLoadRequest {
  model: string;
  id: string;
  path: string;
  scale: number;
}

export type AdapterChange = { kind: 'loaded' | 'unloading' | 'unloaded' | 'failed'; id: string; model: string; detail?: string };

/** Adapter ids: no ':' (it separates base and adapter in a model id). */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Scales outside this are almost certainly mistakes (llama.cpp accepts any float). */
export const MAX_ADAPTER_SCALE = 16;

export class AdapterRegistry {
  private readonly adapters = new Map<string, LoadedAdapter>();
  private readonly drains = new Map<string, () => void>();
  private readonly unloads = new Map<string, Promise<void>>();
  private readonly listeners: ((c: AdapterChange) => void)[] = [];

  constructor(
    private readonly host: AdapterHost,
    /** '' = admin loads may read any file; else they must be inside it (server.admin_load_dir). */
    private readonly loadDir: string,
  ) {}

  onChange(listener: (c: AdapterChange) => void): void {
    this.listeners.push(listener);
  }

  list(model?: string): LoadedAdapter[] {
    return [...this.adapters.values()].filter((a) => model === undefined || a.model === model);
  }

  get(id: string): LoadedAdapter | undefined {
    return this.adapters.get(id);
  }

  /** The adapter `id` of `model`, ready for new requests; 404 / 503 otherwise. */
  resolve(model: string, id: string): LoadedAdapter {
    const a = this.adapters.get(id);
    if (!a || a.model !== model) {
      throw new InferFluxError('adapter_not_found', `The adapter '${id}' is not loaded for model '${model}' (GET /v1/admin/adapters lists them).`, { param: 'adapter' });
    }
    if (a.state === 'unloading') throw new InferFluxError('adapter_unloading', `The adapter '${id}' is being unloaded.`, { param: 'adapter' });
    if (a.state === 'loading') throw new InferFluxError('adapter_not_found', `The adapter '${id}' is still loading.`, { param: 'adapter' });
    return a;
  }

  acquire(model: string, id: string): AdapterLease {
    const adapter = this.resolve(model, id);
    adapter.inflight++;
    let held = true;
    return {
      adapter,
      release: () => {
        if (!held) return;
        held = false;
        adapter.inflight--;
        if (adapter.inflight === 0) this.drains.get(adapter.id)?.();
      },
    };
  }

  /**
   * Loads `req.path` onto `base` under `req.id`. `expectSha256`, when given, is the content the
   * file must still have (a kept adapter replayed at start-up): another content is refused.
   */
  async load(req: AdapterLoadRequest, base: RegisteredModel, expectSha256?: string): Promise<LoadedAdapter> {
    if (!ID_PATTERN.test(req.id)) {
      throw new InferFluxError('invalid_request', 'id must be 1..64 characters of [A-Za-z0-9._-], starting with a letter or digit (no ":").', { param: 'id' });
    }
    if (!Number.isFinite(req.scale) || req.scale <= 0 || req.scale > MAX_ADAPTER_SCALE) {
      throw new InferFluxError('invalid_request', `scale must be a number in (0, ${MAX_ADAPTER_SCALE}].`, { param: 'scale' });
    }
    if (this.adapters.has(req.id)) {
      const a = this.adapters.get(req.id)!;
      throw new InferFluxError('adapter_exists', `An adapter with id '${req.id}' is already ${a.state} (model '${a.model}'); unload it first or pick another id.`, { param: 'id' });
    }
    if (base.state !== 'ready') throw new InferFluxError('model_not_ready', `Model '${base.id}' is ${base.state}; adapters load onto a ready model.`, { param: 'model' });
    const path = await checkModelPath(req.path, this.loadDir).catch((err: unknown) => {
      const e = InferFluxError.from(err);
      throw new InferFluxError('invalid_model_path', e.message.replace(/^Model path/, 'Adapter path'), { param: 'path' });
    });
    let info;
    try {
      info = await validateLoraFile(path, await readGgufHeader(base.path));
    } catch (err) {
      if (err instanceof GgufFormatError) {
        throw new InferFluxError('invalid_adapter_file', `${path} is not a LoRA adapter of model '${base.id}' (${err.reason}): ${err.message}`, { param: 'path' });
      }
      throw new InferFluxError('invalid_model_path', `Cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { param: 'path' });
    }
    // Adapter files are small (rank x width): hashing them whole is cheap.
    const sha256 = createHash('sha256').update(await readFile(path)).digest('hex');
    if (expectSha256 !== undefined && sha256 !== expectSha256) {
      throw new InferFluxError('invalid_adapter_file', `${path} no longer has the content adapter '${req.id}' was loaded with (sha256 ${expectSha256.slice(0, 12)}..., now ${sha256.slice(0, 12)}...); load it again to use the new file.`, { param: 'path' });
    }
    // Re-checked after the last await: two loads of one id may race.
    if (this.adapters.has(req.id)) throw new InferFluxError('adapter_exists', `An adapter with id '${req.id}' is already loaded.`, { param: 'id' });
    const entry: LoadedAdapter = {
      id: req.id,
      model: base.id,
      path,
      scale: req.scale,
      sha256,
      rank: info.rank,
      alpha: info.alpha,
      targets: info.targets.length,
      key: `${sha256.slice(0, 16)}x${req.scale}`,
      state: 'loading',
      inflight: 0,
      loadedAt: Date.now(),
    };
    this.adapters.set(req.id, entry);
    try {
      await this.host.loadAdapter(base.id, { path, sha256 });
    } catch (err) {
      this.adapters.delete(req.id);
      const why = err instanceof Error ? err.message : String(err);
      this.emit({ kind: 'failed', id: req.id, model: base.id, detail: why });
      throw new InferFluxError('invalid_adapter_file', `llama.cpp could not load adapter '${req.id}' from ${path}: ${why}`, { param: 'path', cause: err });
    }
    entry.state = 'ready';
    this.emit({ kind: 'loaded', id: req.id, model: base.id, detail: path });
    return entry;
  }

  /** Drains and forgets an adapter; resolves once no request uses it. A second call joins the first. */
  unload(id: string): Promise<void> {
    const a = this.adapters.get(id);
    if (!a) throw new InferFluxError('adapter_not_found', `No adapter '${id}' is loaded (GET /v1/admin/adapters lists them).`, { param: 'id' });
    const pending = this.unloads.get(id);
    if (pending) return pending;
    if (a.state === 'loading') throw new InferFluxError('adapter_exists', `Adapter '${id}' is still loading; unload it once the load has finished.`, { param: 'id' });
    const run = this.drain(a).finally(() => this.unloads.delete(id));
    this.unloads.set(id, run);
    return run;
  }

  /** The base model is going away: its adapters go with it once their requests end. */
  unloadAllOf(model: string): Promise<void> {
    return Promise.all(this.list(model).filter((a) => a.state !== 'loading').map((a) => this.unload(a.id))).then(() => undefined);
  }

  private async drain(a: LoadedAdapter): Promise<void> {
    a.state = 'unloading';
    this.emit({ kind: 'unloading', id: a.id, model: a.model, detail: `${a.inflight} request(s) running` });
    if (a.inflight > 0) {
      await new Promise<void>((resolve) => this.drains.set(a.id, resolve));
      this.drains.delete(a.id);
    }
    // The engine workers keep the llama.cpp adapter object until their model is disposed
    // (node-llama-cpp frees adapters only with the model); no new request can select it.
    this.adapters.delete(a.id);
    this.emit({ kind: 'unloaded', id: a.id, model: a.model });
  }

  private emit(c: AdapterChange): void {
    for (const l of this.listeners) l(c);
  }
}
