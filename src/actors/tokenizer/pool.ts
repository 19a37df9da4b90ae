/**
 * Tokenizer actor pool: a fixed set of piscina threads running `worker.ts`, so chat templating and
 * tokenization never run on the main thread. Each thread caches its own vocab-only models.
 *
 * The worker is loaded from the compiled `worker.js` next to this file (dist/), via import.meta.url.
 */
import { Piscina } from 'piscina';
import { InferFluxError, isErrorCode, type WireError } from '../../errors.js';
import type { ApplyTemplateTask, DetokenizeTask, TokenizeResult, TokenizeTask, TokenizeTextResult, TokenizeTextTask } from '../protocol.js';
import type { BroadcastTask } from './worker.js';

export interface TokenizerPoolOptions {
  /** Worker threads, all started up front and kept (idle timeout infinite). */
  workers: number;
  /** How long `warm`/`destroy` wait for every thread to take its share. Defaults to `60000` ms. */
  broadcastTimeoutMs?: number;
}

export interface TokenizerPool {
  /** Rejects with an InferFluxError (`invalid_request`, `model_not_loaded`, …). */
  tokenize(task: TokenizeTask): Promise<TokenizeResult>;
  /** Plain text with llama.cpp server's `/tokenize` options. */
  tokenizeText(task: TokenizeTextTask): Promise<TokenizeTextResult>;
  detokenize(task: DetokenizeTask): Promise<string>;
  /** The chat template rendered to text (what `tokenize` with a chat prompt tokenizes). */
  applyTemplate(task: ApplyTemplateTask): Promise<string>;
  /** Loads `modelPath` in every thread so no request pays for the first load. */
  warm(modelPath: string): Promise<void>;
  /** Frees `modelPath`'s vocabulary in every thread (its model was unloaded). */
  release(modelPath: string): Promise<void>;
  /** Frees native objects in every thread, then ends the threads. */
  destroy(): Promise<void>;
  readonly workers: number;
}

export function createTokenizerPool(opts: TokenizerPoolOptions): TokenizerPool {
  if (!Number.isInteger(opts.workers) || opts.workers < 1) {
    throw new InferFluxError('internal_error', `tokenizer workers must be a positive integer, got ${opts.workers}`);
  }
  const workers = opts.workers;
  const timeoutMs = opts.broadcastTimeoutMs ?? 60_000;
  const piscina = new Piscina({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: Infinity,
    // One task per thread at a time: broadcasts rely on it to reach every thread (worker.ts barrier).
    concurrentTasksPerWorker: 1,
  });
  let destroyed = false;

  /** Runs a named control task once on every thread. */
  async function broadcast(name: 'warm' | 'release' | 'dispose', modelPath?: string): Promise<void> {
    const task: BroadcastTask = { barrier: new SharedArrayBuffer(4), threads: workers, timeoutMs, modelPath };
    const ids = await Promise.all(Array.from({ length: workers }, () => piscina.run(task, { name }) as Promise<number>)).catch(
      (err: unknown) => {
        throw rebuild(err);
      },
    );
    if (new Set(ids).size !== workers) {
      throw new InferFluxError('internal_error', `tokenizer ${name} reached ${new Set(ids).size} of ${workers} threads`);
    }
  }

  /** One request task on whichever thread is free; worker rejections come back as InferFluxErrors. */
  async function run<R>(task: object, name: string): Promise<R> {
    if (destroyed) throw new InferFluxError('shutting_down');
    try {
      return (await piscina.run(task, { name })) as R;
    } catch (err) {
      throw rebuild(err);
    }
  }

  return {
    workers,
    tokenize: (task) => run<TokenizeResult>(task, 'default'),
    tokenizeText: (task) => run<TokenizeTextResult>(task, 'tokenizeText'),
    detokenize: (task) => run<string>(task, 'detokenize'),
    applyTemplate: (task) => run<string>(task, 'applyTemplate'),
    async warm(modelPath) {
      if (destroyed) throw new InferFluxError('shutting_down');
      await broadcast('warm', modelPath);
    },
    async release(modelPath) {
      if (destroyed) return;
      await broadcast('release', modelPath);
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      try {
        await broadcast('dispose');
      } finally {
        await piscina.destroy();
      }
    },
  };
}

/** Worker rejections are WireError data; anything else (a thread that died) is internal. */
function rebuild(err: unknown): InferFluxError {
  if (typeof err === 'object' && err !== null && !(err instanceof Error)) {
    const wire = err as Partial<WireError>;
    if (typeof wire.code === 'string' && isErrorCode(wire.code) && typeof wire.message === 'string') {
      return InferFluxError.fromWire(wire as WireError);
    }
  }
  return new InferFluxError('internal_error', `Tokenizer worker failed: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}
