/**
 * Bringing an engine worker's native side up and down: one `Llama` with pinned threads, the model
 * (mmap, shared between workers), one context of N sequences, and the batch adapter over it;
 * the end-of-generation token set; and disposal in reverse order (exiting with live llama.cpp
 * objects aborts the whole process, notes §13).
 */
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { LlamaLogLevel, getLlama, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import { logger } from '../../log/logger.js';
import { BatchContext } from '../../runtime/llama/batch-adapter.js';
import { PROTOCOL_VERSION, type EngineInit, type EngineReady } from '../protocol.js';

/** Saved sequence states (suspension, hand-off) go here: tmpfs where available, so memory, not disk. */
export const STATE_DIR = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

export interface NativeEngine {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  batch: BatchContext;
  /** End-of-generation token ids (banned while `ignore_eos` / `min_tokens` hold). */
  eog: Uint32Array;
  /** What the worker tells the main thread once up. */
  ready: EngineReady;
}

/** Loads step by step, recording what exists in `into` so a failure half-way can still be disposed. */
export async function loadNativeEngine(init: EngineInit, into: Partial<NativeEngine>): Promise<NativeEngine> {
  const t0 = performance.now();
  into.llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: init.threads });
  into.model = await into.llama.loadModel({ modelPath: init.modelPath, useMmap: true, gpuLayers: 0 });
  into.context = await into.model.createContext({
    contextSize: init.contextSize,
    sequences: init.sequences,
    batchSize: init.batchSize,
    threads: init.threads,
  });
  const model = into.model;
  // Written from this worker thread, through the same logger as the main thread.
  logger().info(
    { component: 'engine', model: init.model, worker: init.worker, file_bytes: statSync(init.modelPath).size, load_ms: Math.round(performance.now() - t0) },
    `model ${init.model} loaded in engine worker ${init.worker}`,
  );
  into.batch = new BatchContext(into.llama, model, into.context);
  const vocabSize = vocabSizeOf(model);
  const eog: number[] = [];
  for (let t = 0; t < vocabSize; t++) if (model.isEogToken(t as never)) eog.push(t);
  into.eog = Uint32Array.from(eog);
  into.ready = {
    protocolVersion: PROTOCOL_VERSION,
    model: init.model,
    worker: init.worker,
    sequences: init.sequences,
    contextSize: init.contextSize,
    vocabSize,
    trainContextSize: model.trainContextSize,
    architecture: String(model.fileInfo.metadata.general?.architecture ?? 'unknown'),
    parameterCount: model.fileInsights.totalParameters ?? 0,
  };
  return into as NativeEngine;
}

/** Context, then model, then the `Llama`: whatever of them exists. */
export async function disposeNativeEngine(e: Partial<NativeEngine>): Promise<void> {
  await e.context?.dispose();
  await e.model?.dispose();
  await e.llama?.dispose();
}

function vocabSizeOf(model: LlamaModel): number {
  const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  if (Array.isArray(tokens)) return tokens.length;
  throw new Error('model has no tokenizer.ggml.tokens');
}
