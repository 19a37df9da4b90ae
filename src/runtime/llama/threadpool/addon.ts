/**
 * The persistent llama.cpp thread pool (persistent-threadpool.c beside this file): compiled by
 * `npm run build` where a C compiler exists, loaded into the process before any engine worker
 * loads node-llama-cpp. Without it every multi-thread llama.cpp step starts and joins its threads
 * (node-llama-cpp 3.22.1 attaches no pool), which made 2-thread steps slower than 1-thread ones.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../../config/errors.js';

/** The project root: this file is src/runtime/llama/threadpool/addon.ts or its dist/ twin. */
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const THREADPOOL_SOURCE = path.join(ROOT, 'src', 'runtime', 'llama', 'threadpool', 'persistent-threadpool.c');
export const THREADPOOL_ADDON = path.join(ROOT, 'dist', 'native', 'persistent-threadpool.node');

export interface ThreadpoolStats {
  /** llama.cpp contexts with a pool attached now. */
  contexts: number;
  /** Threads in those pools together. */
  threads: number;
  /** Pools made since start (a context's pool is replaced when a step asks for more threads). */
  poolsMade: number;
  /** Why no pool can be made in this process (the llama.cpp it found is not the one expected). */
  error?: string;
}

export interface PersistentThreadpool {
  stats(): ThreadpoolStats;
}

interface NativeExports {
  configure(poll: number): void;
  stats(): ThreadpoolStats;
  lastContext(): bigint;
  argmax(context: bigint, logitIndex: number, banned: Uint32Array): number;
}

/**
 * Greedy draws on the engine's own thread (persistent-threadpool.c, "Greedy draws"): the token
 * llama.cpp's greedy sampler would pick, read from the last decode's logits without a trip over
 * the libuv pool.
 */
export interface GreedyDraws {
  /**
   * The context whose llama_n_threads this thread called last (call node-llama-cpp's getThreads
   * on it right before); 0n when the pool library does not interpose that call in this process.
   */
  lastContext(): bigint;
  /** First highest logit at `logitIndex` of the context's last decode, skipping `banned`; -2 if it cannot tell. */
  argmax(context: bigint, logitIndex: number, banned: Uint32Array): number;
}

let loaded: { pool: PersistentThreadpool; poll: number } | undefined;
/** This thread's load of the greedy draws (undefined: not tried yet). */
let greedyDraws: GreedyDraws | null | undefined;

/**
 * Loads the addon with RTLD_GLOBAL so node-llama-cpp's llama.cpp calls bind to it. Call before any
 * thread loads node-llama-cpp; once per process (a second call with another poll level throws).
 * Returns the reason instead when the addon was not built or does not load here.
 */
export function loadPersistentThreadpool(poll: number): PersistentThreadpool | { unavailable: string } {
  if (loaded) {
    if (loaded.poll !== poll) throw new Error(`persistent thread pool already loaded with poll ${loaded.poll}`);
    return loaded.pool;
  }
  if (!existsSync(THREADPOOL_ADDON)) {
    return { unavailable: `${path.relative(ROOT, THREADPOOL_ADDON)} was not built (npm run build compiles it on Linux where a C compiler, cc, exists)` };
  }
  const module = { exports: {} as NativeExports };
  try {
    process.dlopen(module, THREADPOOL_ADDON, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL);
  } catch (err) {
    // Built elsewhere (another libc or architecture, a dist/ copied between machines).
    return { unavailable: `${path.relative(ROOT, THREADPOOL_ADDON)} does not load: ${(err as Error).message}` };
  }
  module.exports.configure(poll);
  const pool: PersistentThreadpool = { stats: () => module.exports.stats() };
  loaded = { pool, poll };
  return pool;
}

/**
 * The greedy draws of the library as loaded into this process, for an engine worker thread: a
 * thread-local load (no RTLD_GLOBAL), so it interposes nothing by itself; its context handle is
 * 0n unless the main thread loaded the pool first (startPersistentThreadpool). Null when it was
 * not built or does not load.
 */
export function loadGreedyDraws(): GreedyDraws | null {
  if (greedyDraws !== undefined) return greedyDraws;
  greedyDraws = null;
  if (!existsSync(THREADPOOL_ADDON)) return null;
  const module = { exports: {} as NativeExports };
  try {
    process.dlopen(module, THREADPOOL_ADDON, constants.dlopen.RTLD_NOW);
  } catch {
    return null;
  }
  const { lastContext, argmax } = module.exports;
  if (typeof lastContext === 'function' && typeof argmax === 'function') greedyDraws = { lastContext, argmax };
  return greedyDraws;
}

export type CompileResult = { built: true; upToDate: boolean } | { built: false; reason: string };

/**
 * Compiles the addon into dist/native (skipped when newer than its source). Written under a
 * temporary name and renamed, so an interrupted build never leaves a half-written addon; a failed
 * build removes the previous one too, so no addon built from older source stays behind.
 */
export function compilePersistentThreadpool(cc = process.env.CC || 'cc'): CompileResult {
  if (existsSync(THREADPOOL_ADDON) && statSync(THREADPOOL_ADDON).mtimeMs >= statSync(THREADPOOL_SOURCE).mtimeMs) {
    return { built: true, upToDate: true };
  }
  const headers = path.join(path.dirname(createRequire(import.meta.url).resolve('node-api-headers/package.json')), 'include');
  mkdirSync(path.dirname(THREADPOOL_ADDON), { recursive: true });
  const tmp = `${THREADPOOL_ADDON}.${process.pid}.tmp`;
  const args = ['-O2', '-Wall', '-Wextra', '-fPIC', '-shared', '-I', headers, '-o', tmp, THREADPOOL_SOURCE, '-ldl', '-lpthread'];
  const run = spawnSync(cc, args, { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    rmSync(tmp, { force: true });
    rmSync(THREADPOOL_ADDON, { force: true });
    const code = (run.error as NodeJS.ErrnoException | undefined)?.code;
    const reason = !run.error ? `${cc} exited ${run.status}: ${run.stderr.trim()}` : code === 'ENOENT' ? `no C compiler (${cc})` : `${cc}: ${run.error.message}`;
    return { built: false, reason };
  }
  renameSync(tmp, THREADPOOL_ADDON);
  return { built: true, upToDate: false };
}

/**
 * Start-up: loads the pool as `runtime.threadpool` says and returns the log line. `persistent`
 * with no addon built is a configuration error; `auto` falls back to a thread start per step.
 */
export function startPersistentThreadpool(mode: 'auto' | 'persistent' | 'per_step', poll: number): { pool: PersistentThreadpool | null; summary: string } {
  if (mode === 'per_step') return { pool: null, summary: 'llama.cpp threads: started per step (runtime.threadpool per_step)' };
  const pool = loadPersistentThreadpool(poll);
  if ('unavailable' in pool) {
    if (mode === 'persistent') throw new ConfigError('runtime.threadpool', `is "persistent" but ${pool.unavailable}`);
    return { pool: null, summary: `llama.cpp threads: started per step (no persistent pool: ${pool.unavailable})` };
  }
  return { pool, summary: `llama.cpp threads: one persistent pool per engine context (poll ${poll})` };
}
