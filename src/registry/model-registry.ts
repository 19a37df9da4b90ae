/**
 * The model registry: on the main thread, the one owner of what is served. Each entry has an id,
 * its file (real path, SHA-256, GGUF metadata), capabilities, a state and the default flag:
 *
 *   load ──▶ loading ──host up──▶ ready ──unload──▶ unloading ──drained, host down──▶ (gone)
 *                    └─host failed─▶ failed ──unload / load again──▶ (gone)
 *
 * Requests take a lease on their model (`acquire`) for as long as they run. Unloading refuses new
 * leases at once (503 `model_unloading`), waits for the running ones to end (nothing is cut off),
 * then stops the model's workers and forgets the id (404 `model_not_found` from then on). A load
 * checks the path (models directory), the GGUF (in TypeScript, before native code) and the memory
 * budget before any worker starts; other models keep serving throughout. Every change is emitted
 * as a `change` event (the admin API audits them; downloads and embeddings can follow them).
 *
 * The registry does not start workers itself: a `ModelHost` (the actor system) does, so the state
 * machine is driven in unit tests with a host whose start/stop the test resolves.
 */
import { EventEmitter } from 'node:events';
import type { ModelEntry } from '../config/types.js';
import { InferFluxError } from '../errors.js';
import { GgufFormatError, readGgufHeader, validateGguf, type GgufInfo } from '../runtime/gguf/reader.js';
import { capabilitiesOf, type Capabilities } from './capabilities.js';
import { sha256File } from './file-hash.js';
import { estimateModelMemory, type MemoryEstimate, type ServingShape } from './memory-estimate.js';
import { modelMetadata, type ModelMetadata } from './model-metadata.js';
import { checkModelPath } from './model-path.js';
import { pulledModelPath } from '../runtime/model-files.js';
import { ModelStore } from '../runtime/models/model-store.js';

export type ModelState = 'loading' | 'ready' | 'unloading' | 'failed';

export interface RegisteredModel {
  readonly id: string;
  /** Real path of the GGUF file. */
  readonly path: string;
  /** Hex SHA-256 of the file; null while it is still being computed (streamed in the background). */
  sha256: string | null;
  readonly capabilities: Capabilities;
  state: ModelState;
  isDefault: boolean;
  /** Why the model failed to load (state `failed`), else null. */
  error: string | null;
  /** The pulled model's name when it was loaded by name, else null. */
  readonly pulled: string | null;
  /** `config` (server.yaml / env) or `admin` (loaded at runtime). */
  readonly source: 'config' | 'admin';
  /** Unique per load: caches key on it, so an id loaded again with another file never serves the old one's answers. */
  readonly serial: number;
  /** When this load began, ms since the epoch. */
  readonly loadedAt: number;
  readonly metadata: ModelMetadata;
  readonly fileBytes: number;
  readonly memory: MemoryEstimate;
  /** Requests holding a lease on the model. */
  inflight: number;
}

export interface ModelHost {
  /** Starts the model's engine workers and tokenizer support; rejects, saying why, when none came up. */
  startModel(model: ModelEntry): Promise<void>;
  /** Stops them and frees what they hold. Called only once the model has no running request. */
  stopModel(model: ModelEntry): Promise<void>;
  /** Why a configured model's workers failed at start-up, if they did (null when it serves). */
  startupFailure(id: string): string | null;
}

export interface LoadRequest {
  /** Defaults to `model` when a pulled model is named. */
  id?: string;
  /** A GGUF file; exactly one of `path` and `model`. */
  path?: string;
  /** A pulled model's name in the pulled-models directory (`owner/repo:quant`). */
  model?: string;
  /** Make it the default model once it is ready. */
  default?: boolean;
}

export type RegistryChange = { kind: 'loading' | 'ready' | 'failed' | 'unloading' | 'unloaded' | 'default'; id: string; detail?: string };

export interface Lease {
  readonly model: RegisteredModel;
  /** Idempotent. */
  release(): void;
}

export interface RegistryOptions {
  host: ModelHost;
  /** '' = admin loads may read any file; else they must be inside it. */
  modelsDir: string;
  /**
   * Where pulled models are (`server.models_dir`): a load naming one reads its manifest there.
   * Those files are the server's own store, so `modelsDir` does not confine them.
   */
  pulledDir: string;
  memoryBudgetBytes: number;
  /** How each model is served (workers, context), for the memory estimate. */
  shape: ServingShape;
}

/** Same rule as `models[].id` in the config schema. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

const MiB = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

let serials = 0;

export class ModelRegistry extends EventEmitter<{ change: [RegistryChange] }> {
  private readonly models = new Map<string, RegisteredModel>();
  /** Ids between an accepted load request and their entry (path and GGUF checks are async). */
  private readonly reserved = new Set<string>();
  private readonly drains = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  private readonly unloads = new Map<string, Promise<void>>();

  constructor(private readonly opts: RegistryOptions) {
    super();
  }

  /**
   * Adopts the configured models, whose workers the host started with the server (files already
   * validated at start-up): ready, or failed with the host's reason.
   */
  async adoptConfigured(models: readonly ModelEntry[]): Promise<void> {
    for (const m of models) {
      const info = await readGgufHeader(m.path);
      const failure = this.opts.host.startupFailure(m.id);
      const entry = this.entry(m.id, m.path, info, 'config', m.pulled ?? null);
      entry.isDefault = m.default;
      entry.state = failure === null ? 'ready' : 'failed';
      entry.error = failure;
      this.models.set(m.id, entry);
    }
  }

  list(): RegisteredModel[] {
    return [...this.models.values()];
  }

  get(id: string): RegisteredModel | undefined {
    return this.models.get(id);
  }

  get defaultModel(): RegisteredModel | undefined {
    for (const m of this.models.values()) if (m.isDefault) return m;
    return undefined;
  }

  /** The entry a request names (undefined or '' = the default), in any state; `model_not_found` otherwise. */
  lookup(id: string | undefined): RegisteredModel {
    if (id === undefined || id === '') {
      const d = this.defaultModel;
      if (!d) throw new InferFluxError('model_not_loaded', 'No model is loaded; load one with POST /v1/admin/models.');
      return d;
    }
    const m = this.models.get(id);
    if (!m) throw new InferFluxError('model_not_found', `The model '${id}' does not exist.`, { param: 'model' });
    return m;
  }

  /** The entry if it may take new requests: `model_unloading`, `model_not_loaded` (loading, failed) otherwise. */
  resolve(id: string | undefined): RegisteredModel {
    const m = this.lookup(id);
    switch (m.state) {
      case 'ready':
        return m;
      case 'unloading':
        throw new InferFluxError('model_unloading', `The model '${m.id}' is being unloaded; running requests finish, new ones are refused.`, { param: 'model' });
      case 'loading':
        throw new InferFluxError('model_not_loaded', `The model '${m.id}' is still loading.`, { retryAfter: 1 });
      case 'failed':
        throw new InferFluxError('model_not_loaded', `Model '${m.id}' is not loaded${m.error ? `: ${m.error}` : ''}.`, { retryAfter: 5 });
      default: {
        const never: never = m.state;
        throw new Error(`unknown model state ${String(never)}`);
      }
    }
  }

  /** Resolves like `resolve` and holds the model until `release()`: an unload waits for it. */
  acquire(id: string | undefined): Lease {
    const model = this.resolve(id);
    model.inflight++;
    let held = true;
    return {
      model,
      release: () => {
        if (!held) return;
        held = false;
        model.inflight--;
        if (model.inflight === 0) this.drains.get(model.id)?.resolve();
      },
    };
  }

  /** Bytes the registered models are estimated to hold (failed ones hold nothing). */
  get memoryUsed(): number {
    let used = 0;
    for (const m of this.models.values()) if (m.state !== 'failed') used += m.memory.totalBytes;
    return used;
  }

  async load(req: LoadRequest): Promise<RegisteredModel> {
    if ((req.path === undefined) === (req.model === undefined)) {
      throw new InferFluxError('invalid_request', "Give exactly one of 'path' (a GGUF file) and 'model' (a pulled model's name).", { param: req.path === undefined ? 'path' : 'model' });
    }
    const id = req.id ?? req.model;
    if (id === undefined) throw new InferFluxError('invalid_request', "'id' is required when loading a path (it is the name clients send as \"model\").", { param: 'id' });
    return this.loadAs({ ...req, id });
  }

  private async loadAs(req: LoadRequest & { id: string }): Promise<RegisteredModel> {
    if (!ID_PATTERN.test(req.id)) {
      throw new InferFluxError('invalid_request', 'id must be 1..128 characters of [A-Za-z0-9._:/-], starting with a letter or digit.', { param: 'id' });
    }
    const existing = this.models.get(req.id);
    if (this.reserved.has(req.id) || (existing && existing.state !== 'failed')) {
      throw new InferFluxError('model_exists', `A model with id '${req.id}' is already ${existing?.state ?? 'loading'}; unload it first or pick another id.`, { param: 'id' });
    }
    this.reserved.add(req.id);
    let entry: RegisteredModel;
    try {
      const path =
        req.model !== undefined
          ? await checkModelPath(await pulledModelPath(new ModelStore(this.opts.pulledDir), req.model), '')
          : await checkModelPath(req.path!, this.opts.modelsDir);
      const info = await validated(path);
      entry = this.entry(req.id, path, info, 'admin', req.model ?? null);
      const used = this.memoryUsed;
      if (used + entry.memory.totalBytes > this.opts.memoryBudgetBytes) {
        throw new InferFluxError(
          'insufficient_memory',
          `Model '${req.id}' needs an estimated ${MiB(entry.memory.totalBytes)} (weights ${MiB(entry.memory.weightsBytes)}, ` +
            `${this.opts.shape.workers} worker(s) x ${MiB(entry.memory.kvBytesPerWorker)} KV + overhead); ${MiB(used)} of the ` +
            `${MiB(this.opts.memoryBudgetBytes)} budget (runtime.memory_budget_bytes) is in use. Unload a model or raise the budget.`,
        );
      }
      // A failed earlier load of this id is replaced (its workers are already gone).
      if (existing) this.models.delete(req.id);
      this.models.set(req.id, entry);
    } finally {
      this.reserved.delete(req.id);
    }
    this.emitChange({ kind: 'loading', id: entry.id, detail: entry.path });
    void sha256File(entry.path).then(
      (hex) => (entry.sha256 = hex),
      () => undefined,
    );
    try {
      await this.opts.host.startModel(toModelEntry(entry));
    } catch (err) {
      entry.state = 'failed';
      entry.error = err instanceof Error ? err.message : String(err);
      this.emitChange({ kind: 'failed', id: entry.id, detail: entry.error });
      throw new InferFluxError('invalid_model_file', `llama.cpp could not start model '${entry.id}' from ${entry.path}: ${entry.error}`, { param: 'path', cause: err });
    }
    entry.state = 'ready';
    this.emitChange({ kind: 'ready', id: entry.id });
    if (req.default === true || !this.defaultModel) this.setDefault(entry.id);
    return entry;
  }

  /** Drains and stops a model; resolves once it is gone. A second call joins the first. */
  unload(id: string): Promise<void> {
    const m = this.lookup(id);
    const pending = this.unloads.get(id);
    if (pending) return pending;
    if (m.isDefault) {
      throw new InferFluxError('model_is_default', `Model '${id}' is the default; make another model the default first (POST /v1/admin/models/{id}/default).`, { param: 'id' });
    }
    if (m.state === 'loading') throw new InferFluxError('model_not_ready', `Model '${id}' is still loading; unload it once the load has finished.`, { param: 'id' });
    const run = this.drainAndStop(m).finally(() => this.unloads.delete(id));
    this.unloads.set(id, run);
    return run;
  }

  private async drainAndStop(m: RegisteredModel): Promise<void> {
    const wasFailed = m.state === 'failed';
    m.state = 'unloading';
    this.emitChange({ kind: 'unloading', id: m.id, detail: `${m.inflight} request(s) running` });
    if (m.inflight > 0) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.drains.set(m.id, { promise, resolve });
      await promise;
      this.drains.delete(m.id);
    }
    // A failed model's workers never came up; stopping still frees whatever half-started.
    try {
      await this.opts.host.stopModel(toModelEntry(m));
    } finally {
      this.models.delete(m.id);
      this.emitChange({ kind: 'unloaded', id: m.id, detail: wasFailed ? 'was failed' : undefined });
    }
  }

  setDefault(id: string): RegisteredModel {
    const m = this.lookup(id);
    if (m.state !== 'ready') throw new InferFluxError('model_not_ready', `Model '${id}' is ${m.state}; only a ready model can be the default.`, { param: 'id' });
    for (const other of this.models.values()) other.isDefault = other === m;
    this.emitChange({ kind: 'default', id });
    return m;
  }

  private entry(id: string, path: string, info: GgufInfo, source: 'config' | 'admin', pulled: string | null): RegisteredModel {
    const metadata = modelMetadata(info);
    return {
      id,
      path,
      pulled,
      sha256: null,
      capabilities: capabilitiesOf(metadata),
      state: 'loading',
      isDefault: false,
      error: null,
      source,
      serial: ++serials,
      loadedAt: Date.now(),
      metadata,
      fileBytes: info.fileSize,
      memory: estimateModelMemory(metadata, info.fileSize, this.opts.shape),
      inflight: 0,
    };
  }

  /** Hashes the configured models' files in the background (start-up does not wait for it). */
  hashConfigured(): void {
    for (const m of this.models.values()) {
      if (m.sha256 === null) void sha256File(m.path).then((hex) => (m.sha256 = hex), () => undefined);
    }
  }

  private emitChange(change: RegistryChange): void {
    this.emit('change', change);
  }
}

/** The full pre-native check (structure + llama.cpp's asserts), as `invalid_model_file`. */
async function validated(path: string): Promise<GgufInfo> {
  try {
    return await validateGguf(path);
  } catch (err) {
    if (err instanceof GgufFormatError) {
      throw new InferFluxError('invalid_model_file', `${path} is not a GGUF model llama.cpp can load safely (${err.reason}): ${err.message}`, { param: 'path' });
    }
    throw new InferFluxError('invalid_model_path', `Cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { param: 'path' });
  }
}

function toModelEntry(m: RegisteredModel): ModelEntry {
  return { id: m.id, path: m.path, default: m.isDefault, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' };
}
