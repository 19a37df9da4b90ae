/**
 * Bringing an engine worker's native side up and down: one `Llama` with pinned threads, the model
 * (mmap, shared between workers), one context of N sequences, and the batch adapter over it;
 * the end-of-generation token set; and disposal in reverse order (exiting with live llama.cpp
 * objects aborts the whole process, notes §13).
 */
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Llama, LlamaContext, LlamaModel } from 'node-llama-cpp';
import { logger } from '../../log/logger.js';
import { BatchContext } from '../../runtime/llama/batch-adapter.js';
import { getThreadLlama } from '../../runtime/llama/thread-llama.js';
import { ConfigError } from '../../config/errors.js';
import { PROTOCOL_VERSION, type EngineInit, type EngineReady } from '../protocol.js';

/** Saved sequence states (suspension, hand-off) go here: tmpfs where available, so memory, not disk. */
export const STATE_DIR = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

export interface NativeEngine {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  batch: BatchContext;
  /** Speculative decoding's draft model, its context (one sequence per target sequence) and batch adapter. */
  draftModel?: LlamaModel;
  draftContext?: LlamaContext;
  draft?: BatchContext;
  /** End-of-generation token ids (banned while `ignore_eos` / `min_tokens` hold). */
  eog: Uint32Array;
  /** What the worker tells the main thread once up. */
  ready: EngineReady;
}

/** runtime.flash_attention as node-llama-cpp's context option ('auto': llama.cpp decides per device). */
function flashAttentionOption(setting: EngineInit['flashAttention']): boolean | 'auto' {
  return setting === 'auto' ? 'auto' : setting === 'on';
}

/** Loads step by step, recording what exists in `into` so a failure half-way can still be disposed. */
export async function loadNativeEngine(init: EngineInit, into: Partial<NativeEngine>): Promise<NativeEngine> {
  const t0 = performance.now();
  // backend: mps is Metal (config/load.ts allows it on macOS with Apple silicon only); else CPU.
  const gpu = init.metalLayers === null ? false : 'metal';
  const gpuLayers = init.metalLayers ?? 0;
  into.llama = await getThreadLlama({ gpu, maxThreads: init.threads });
  into.model = await into.llama.loadModel({ modelPath: init.modelPath, useMmap: true, gpuLayers });
  into.context = await into.model.createContext({
    contextSize: init.contextSize,
    sequences: init.sequences,
    batchSize: init.batchSize,
    threads: init.threads,
    flashAttention: flashAttentionOption(init.flashAttention),
  });
  const model = into.model;
  // Written from this worker thread, through the same logger as the main thread.
  logger().info(
    {
      component: 'engine',
      model: init.model,
      worker: init.worker,
      file_bytes: statSync(init.modelPath).size,
      load_ms: Math.round(performance.now() - t0),
      flash_attention: init.flashAttention,
      backend: gpu === 'metal' ? `metal (${gpuLayers} layers)` : 'cpu',
    },
    `model ${init.model} loaded in engine worker ${init.worker} (flash attention ${init.flashAttention}${gpu === 'metal' ? `, Metal, ${gpuLayers} layers offloaded` : ''})`,
  );
  into.batch = new BatchContext(into.llama, model, into.context);
  if (init.speculative) {
    into.draftModel = await into.llama.loadModel({ modelPath: init.speculative.draftModelPath, useMmap: true, gpuLayers });
    checkDraftVocabulary(model, into.draftModel, init.speculative.draftModelPath);
    into.draftContext = await into.draftModel.createContext({
      contextSize: init.contextSize,
      sequences: init.sequences,
      batchSize: init.batchSize,
      threads: init.threads,
      flashAttention: flashAttentionOption(init.flashAttention),
    });
    into.draft = new BatchContext(into.llama, into.draftModel, into.draftContext);
  }
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
  await e.draftContext?.dispose();
  await e.draftModel?.dispose();
  await e.context?.dispose();
  await e.model?.dispose();
  await e.llama?.dispose();
}

/**
 * The draft proposes token ids that the target checks, so both must mean the same thing by every
 * id: the same number of tokens, the same text for each, the same special tokens. A draft that
 * differs is refused at start-up (the engine does not start) rather than silently never accepted.
 */
export function checkDraftVocabulary(target: LlamaModel, draft: LlamaModel, draftPath: string): void {
  const a = target.fileInfo.metadata.tokenizer?.ggml?.tokens;
  const b = draft.fileInfo.metadata.tokenizer?.ggml?.tokens;
  const refuse = (why: string): never => {
    throw new ConfigError('runtime.speculative_decoding.draft_model', `${draftPath}: ${why}; the draft must share the target model's tokenizer`);
  };
  if (!Array.isArray(a) || !Array.isArray(b)) refuse('a model has no tokenizer.ggml.tokens');
  const ta = a as string[];
  const tb = b as string[];
  if (ta.length !== tb.length) refuse(`vocabulary has ${tb.length} tokens, the target has ${ta.length}`);
  for (let i = 0; i < ta.length; i++) if (ta[i] !== tb[i]) refuse(`token ${i} is ${JSON.stringify(tb[i])}, the target's is ${JSON.stringify(ta[i])}`);
  for (const k of ['bos', 'eos', 'eot'] as const) {
    if (target.tokens[k] !== draft.tokens[k]) refuse(`special token ${k} is ${String(draft.tokens[k])}, the target's is ${String(target.tokens[k])}`);
  }
}

function vocabSizeOf(model: LlamaModel): number {
  const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  if (Array.isArray(tokens)) return tokens.length;
  throw new Error('model has no tokenizer.ggml.tokens');
}
