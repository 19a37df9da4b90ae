/**
 * Runtime model changes kept across restarts (`server.models_state_path`): what the admin API
 * changed relative to the configured models list, and the LoRA adapters it loaded, as one small
 * JSON file.
 *
 *   {"version": 1, "updated_at": "...",
 *    "loaded":   [{"id": "qwen", "path": "/m/q.gguf"}, {"id": "acme/r:Q8_0", "model": "acme/r:Q8_0"}],
 *    "unloaded": ["demo"],          configured models unloaded at runtime
 *    "default":  "qwen",            the default model, or null
 *    "adapters": [{"id": "style", "model": "qwen", "path": "/a/s.gguf", "scale": 1, "sha256": "..."}]}
 *
 * (`adapters` may be absent: files written before adapters were kept have none.) Written after
 * each change (a model ready, unloaded, made the default; an adapter loaded or unloaded) from the
 * registries' current sets, atomically: a temp file in the same directory, fsync, rename, fsync
 * of the directory; so a crash leaves the old file or the new one, never half of one. Writes are
 * serialised; each writes the set as it is when it runs. At start-up the file is read before any
 * model loads (a file that does not parse stops start-up naming it), and after the configured
 * models are up its loads, default and unloads are replayed through the registry, then the
 * adapters (`restoreAdapters`); one that cannot be replayed (file gone or changed, over budget, id
 * now in the config, base model not served) is logged and skipped.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InferFluxError } from '../errors.js';
import type { AdapterRegistry } from './adapter-registry.js';
import type { ModelRegistry } from './model-registry.js';

export type StateLoad = { id: string; path: string } | { id: string; model: string };

/** A LoRA adapter loaded at runtime; `sha256` is the file's content when it was loaded. */
export interface StateAdapter {
  id: string;
  model: string;
  path: string;
  scale: number;
  sha256: string;
}

export interface KeptModelState {
  loaded: StateLoad[];
  unloaded: string[];
  default: string | null;
  adapters: StateAdapter[];
}

export const EMPTY_STATE: KeptModelState = { loaded: [], unloaded: [], default: null, adapters: [] };

/** A state file that cannot be used: start-up stops with this message (it names the file). */
export class ModelStateError extends Error {
  constructor(file: string, why: string) {
    super(`models state file ${file} (server.models_state_path, INFERFLUX_MODELS_STATE) ${why}; fix it, or remove it to start from the configured models`);
    this.name = 'ModelStateError';
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 4096;

/** Parses and checks a state file's text; throws `ModelStateError` saying what is wrong. */
export function parseModelState(file: string, text: string): KeptModelState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelStateError(file, `is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isObj(raw)) throw new ModelStateError(file, 'is not a JSON object');
  if (raw.version !== 1) throw new ModelStateError(file, `has version ${JSON.stringify(raw.version)}, expected 1`);
  if (!Array.isArray(raw.loaded)) throw new ModelStateError(file, 'has no loaded list');
  if (!Array.isArray(raw.unloaded) || !raw.unloaded.every(isStr)) throw new ModelStateError(file, 'has no unloaded list of ids');
  if (raw.default !== null && !isStr(raw.default)) throw new ModelStateError(file, 'default must be a model id or null');
  const loaded: StateLoad[] = raw.loaded.map((e: unknown, i: number) => {
    if (!isObj(e) || !isStr(e.id)) throw new ModelStateError(file, `loaded[${i}] has no id`);
    if (isStr(e.path) && e.model === undefined) return { id: e.id, path: e.path };
    if (isStr(e.model) && e.path === undefined) return { id: e.id, model: e.model };
    throw new ModelStateError(file, `loaded[${i}] needs exactly one of path and model`);
  });
  if (raw.adapters !== undefined && !Array.isArray(raw.adapters)) throw new ModelStateError(file, 'adapters must be a list');
  const adapters: StateAdapter[] = ((raw.adapters as unknown[] | undefined) ?? []).map((e: unknown, i: number) => {
    if (!isObj(e) || !isStr(e.id) || !isStr(e.model) || !isStr(e.path)) throw new ModelStateError(file, `adapters[${i}] needs an id, a model and a path`);
    if (typeof e.scale !== 'number' || !Number.isFinite(e.scale)) throw new ModelStateError(file, `adapters[${i}] needs a numeric scale`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) throw new ModelStateError(file, `adapters[${i}] needs the file's sha256 (64 hex digits)`);
    return { id: e.id, model: e.model, path: e.path, scale: e.scale, sha256: e.sha256 };
  });
  return { loaded, unloaded: raw.unloaded as string[], default: raw.default as string | null, adapters };
}

/** The state at `file`; the empty state when there is none (or `file` is ''). */
export async function readModelState(file: string): Promise<KeptModelState> {
  if (file === '') return EMPTY_STATE;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_STATE;
    throw new ModelStateError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseModelState(file, text);
}

/** What the registries hold, relative to the configured ids (adapters: the ready ones). */
export function snapshotOf(registry: ModelRegistry, adapters: AdapterRegistry, configuredIds: readonly string[]): KeptModelState {
  const models = registry.list();
  const loaded: StateLoad[] = models
    .filter((m) => m.source === 'admin' && m.state === 'ready')
    .map((m) => (m.pulled !== null ? { id: m.id, model: m.pulled } : { id: m.id, path: m.path }));
  const unloaded = configuredIds.filter((id) => {
    const m = registry.get(id);
    return m === undefined || m.state === 'unloading';
  });
  const kept = adapters
    .list()
    .filter((a) => a.state === 'ready')
    .map((a) => ({ id: a.id, model: a.model, path: a.path, scale: a.scale, sha256: a.sha256 }));
  return { loaded, unloaded, default: registry.defaultModel?.id ?? null, adapters: kept };
}

/** Writes `text` to `file` atomically (temp file in the same directory, fsync, rename, fsync the directory). */
async function writeAtomically(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Keeps the file in step with the registry. `flush()` resolves once every change so far is on
 * disk (the admin API answers after it), or rejects when the write failed.
 */
export class ModelStateWriter {
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(
    private readonly file: string,
    private readonly registry: ModelRegistry,
    private readonly adapters: AdapterRegistry,
    private readonly configuredIds: readonly string[],
    private readonly log: (msg: string) => void,
  ) {}

  /** Starts writing on every change of either registry that alters the kept set. */
  follow(): void {
    if (this.file === '') return;
    this.registry.on('change', (c) => {
      if (c.kind === 'ready' || c.kind === 'unloaded' || c.kind === 'default') this.schedule();
    });
    this.adapters.onChange((c) => {
      if (c.kind === 'loaded' || c.kind === 'unloaded') this.schedule();
    });
  }

  private schedule(): void {
    this.chain = this.chain.then(async () => {
      const state = snapshotOf(this.registry, this.adapters, this.configuredIds);
      const text = `${JSON.stringify({ version: 1, updated_at: new Date().toISOString(), ...state }, null, 2)}\n`;
      try {
        await writeAtomically(this.file, text);
        this.failure = null;
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        this.log(`could not save the models state to ${this.file}: ${this.failure.message}`);
      }
    });
  }

  async flush(): Promise<void> {
    await this.chain;
    if (this.failure !== null) {
      throw new InferFluxError('internal_error', `The change was applied but could not be saved to ${this.file} (server.models_state_path): ${this.failure.message}; a restart would not keep it.`);
    }
  }
}

/**
 * Replays a kept state over the configured models: loads first, then the default, then the
 * unloads (the default cannot be unloaded). Anything that cannot be replayed is logged and skipped.
 */
export interface StateLog {
  (msg: string): void;
  warn(msg: string): void;
}

export async function restoreModelState(registry: ModelRegistry, state: KeptModelState, log: StateLog): Promise<void> {
  for (const l of state.loaded) {
    if (registry.get(l.id) !== undefined) {
      log.warn(`models state: '${l.id}' is now a configured model; the kept runtime load is skipped`);
      continue;
    }
    try {
      await registry.load('model' in l ? { id: l.id, model: l.model } : { id: l.id, path: l.path });
      log(`models state: loaded '${l.id}' (${'model' in l ? `pulled model ${l.model}` : l.path})`);
    } catch (err) {
      log.warn(`models state: could not load '${l.id}' again: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (state.default !== null) {
    const m = registry.get(state.default);
    if (m?.state === 'ready') registry.setDefault(m.id);
    else log.warn(`models state: the kept default '${state.default}' is not served; the default stays '${registry.defaultModel?.id ?? 'none'}'`);
  }
  for (const id of state.unloaded) {
    const m = registry.get(id);
    if (m === undefined) continue;
    if (m.isDefault) {
      log.warn(`models state: '${id}' was unloaded but is the default now; it stays loaded`);
      continue;
    }
    try {
      await registry.unload(id);
      log(`models state: unloaded configured model '${id}'`);
    } catch (err) {
      log.warn(`models state: could not unload '${id}': ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/**
 * Replays kept adapters onto the served models (after `restoreModelState`). One whose base model is
 * not served, whose id is taken, or whose file is gone or no longer has the content it was loaded
 * with is logged and skipped: a changed file is a different adapter, to be loaded again on purpose.
 */
export async function restoreAdapters(adapters: AdapterRegistry, registry: ModelRegistry, kept: readonly StateAdapter[], log: StateLog): Promise<void> {
  for (const k of kept) {
    const base = registry.get(k.model);
    if (base === undefined) {
      log.warn(`models state: adapter '${k.id}' is skipped: its model '${k.model}' is not served`);
      continue;
    }
    try {
      const a = await adapters.load({ model: k.model, id: k.id, path: k.path, scale: k.scale }, base, k.sha256);
      log(`models state: loaded adapter '${a.id}' on '${a.model}' (${a.path}, scale ${a.scale})`);
    } catch (err) {
      log.warn(`models state: could not load adapter '${k.id}' again: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
