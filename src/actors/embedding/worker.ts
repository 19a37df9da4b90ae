/**
 * Embedding actor: a worker thread holding one `Llama` and, per model it has been asked about, the
 * model (mmap: its pages are shared with the engine workers) and one `createEmbeddingContext`
 * (notes §8). It runs one task at a time (the pool sends the next when this one answers), so
 * embeddings never share a thread, a context or a batch with the decode loop.
 *
 * Per task: tokenize (text is never parsed for special tokens), check ids against the vocabulary
 * and each input's length against the limit (all before any native evaluation: an out-of-range id
 * aborts llama.cpp, and node-llama-cpp refuses an input as long as the context), then evaluate the
 * inputs one by one and L2-normalise the vectors (llama.cpp returns them unnormalised).
 *
 * Control is comlink RPC on `parentPort` (start, load, embed, shutdown). Errors leave as
 * `WireError` data, rebuilt from the error table on the main thread.
 */
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { Llama, LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import { getThreadLlama } from '../../runtime/llama/thread-llama.js';
import { InferFluxError, type WireError } from '../../errors.js';
import { exposeRpc } from '../rpc.js';
import { PROTOCOL_VERSION, type EmbeddingInit, type EmbeddingReady, type EmbedResult, type EmbedTask } from '../protocol.js';

interface LoadedModel {
  model: LlamaModel;
  context: LlamaEmbeddingContext;
  vocabSize: number;
}

let init: EmbeddingInit | null = null;
let llama: Llama | null = null;
const models = new Map<string, Promise<LoadedModel>>();
let stopping = false;

async function load(modelPath: string): Promise<LoadedModel> {
  if (!llama || !init) throw new InferFluxError('internal_error', 'embedding worker used before start');
  let model: LlamaModel | undefined;
  try {
    model = await llama.loadModel({ modelPath, useMmap: true, gpuLayers: 0 });
    // batchSize = contextSize: the whole input is one llama.cpp batch, so mean/CLS pooling sees every
    // token of it (pooling runs per decode call; a split input would be pooled over its last piece).
    const context = await model.createEmbeddingContext({ contextSize: init.contextSize, batchSize: init.contextSize, threads: init.threads });
    const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
    if (!Array.isArray(tokens)) throw new Error('model has no tokenizer.ggml.tokens');
    return { model, context, vocabSize: tokens.length };
  } catch (err) {
    await model?.dispose().catch(() => undefined);
    throw new InferFluxError('model_not_loaded', `Cannot load ${modelPath} for embeddings: ${(err as Error)?.message ?? String(err)}`);
  }
}

function loaded(modelPath: string): { entry: Promise<LoadedModel>; fresh: boolean } {
  let entry = models.get(modelPath);
  if (entry) return { entry, fresh: false };
  entry = load(modelPath);
  models.set(modelPath, entry);
  // A failed load is not kept: the file may be fixed or replaced.
  entry.catch(() => models.delete(modelPath));
  return { entry, fresh: true };
}

function toWire(err: unknown): WireError {
  if (err instanceof InferFluxError) return err.toWire();
  return new InferFluxError('internal_error', `Embedding failed: ${err instanceof Error ? err.message : String(err)}`).toWire();
}

function l2Normalise(v: readonly number[]): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const out = Float32Array.from(v);
  const norm = Math.sqrt(sum);
  // An all-zero vector has no direction; it stays zero rather than becoming NaN.
  if (norm > 0) for (let i = 0; i < out.length; i++) out[i]! /= norm;
  return out;
}

/** Tokens of every input, checked and (when asked) truncated, before anything is evaluated. */
function prepare(m: LoadedModel, task: EmbedTask, limit: number): { body: number[]; n: number }[] {
  const name = (i: number) => (task.single ? task.param : `${task.param}[${i}]`);
  return task.inputs.map((input, i) => {
    let body: number[];
    if ('text' in input) {
      body = m.model.tokenize(input.text, false) as number[];
    } else {
      for (const t of input.tokens) {
        if (!Number.isInteger(t) || t < 0 || t >= m.vocabSize) {
          throw new InferFluxError('invalid_request', `Token id ${t} in ${name(i)} is outside the vocabulary (0..${m.vocabSize - 1}).`, { param: name(i) });
        }
      }
      body = [...input.tokens];
    }
    // What the context will evaluate: the body plus the BOS/EOS the model asks for.
    let n = m.context.calculateInputLength(body as never[]);
    if (n > limit) {
      if (!task.truncate) {
        throw new InferFluxError(
          'context_length_exceeded',
          `${name(i)} is ${n} tokens; embeddings of this model take at most ${limit} tokens per input (runtime.embeddings.context_size). Shorten or split it.`,
          { param: name(i) },
        );
      }
      // Explicit truncation (Ollama's `truncate: true`): the end of the body is cut, specials kept.
      body = body.slice(0, Math.max(0, body.length - (n - limit)));
      n = m.context.calculateInputLength(body as never[]);
    }
    return { body, n };
  });
}

const api = {
  async start(opts: EmbeddingInit): Promise<EmbeddingReady> {
    init = opts;
    llama = await getThreadLlama({ gpu: false, maxThreads: opts.threads });
    return { protocolVersion: PROTOCOL_VERSION, worker: opts.worker };
  },

  /** Loads a model ahead of its first request (start-up warm-up). */
  async load(modelPath: string): Promise<void> {
    try {
      await loaded(modelPath).entry;
    } catch (err) {
      throw toWire(err);
    }
  },

  async embed(task: EmbedTask): Promise<EmbedResult> {
    try {
      if (stopping) throw new InferFluxError('shutting_down');
      const t0 = performance.now();
      const { entry, fresh } = loaded(task.modelPath);
      const m = await entry;
      const loadMs = fresh ? performance.now() - t0 : 0;
      // node-llama-cpp refuses an input of contextSize tokens or more.
      const limit = Math.min(task.maxTokens, init!.contextSize - 1);
      const prepared = prepare(m, task, limit);
      const t1 = performance.now();
      const vectors: Float32Array[] = [];
      for (const p of prepared) vectors.push(l2Normalise((await m.context.getEmbeddingFor(p.body as never[])).vector));
      return { vectors, tokens: prepared.map((p) => p.n), loadMs, evalMs: performance.now() - t1 };
    } catch (err) {
      throw toWire(err);
    }
  },

  /** Contexts, models, then the Llama: a thread ending with live llama.cpp objects aborts the process. */
  async shutdown(): Promise<void> {
    stopping = true;
    const all = await Promise.allSettled([...models.values()]);
    models.clear();
    for (const r of all) {
      if (r.status !== 'fulfilled') continue;
      await r.value.context.dispose();
      await r.value.model.dispose();
    }
    const l = llama;
    llama = null;
    await l?.dispose();
  },
};

export type EmbeddingApi = typeof api;

if (parentPort) exposeRpc(api, parentPort);
