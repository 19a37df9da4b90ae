/**
 * A generated tiny model loaded in this process through node-llama-cpp (1 thread, CPU), with a
 * context and its BatchContext when asked: the set-up of the tests that drive llama.cpp directly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlamaLogLevel, getLlama, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import { BatchContext } from '../../src/runtime/llama/batch-adapter.js';
import { generateModel } from '../../src/runtime/gguf/generate.js';

export interface TinyModel {
  dir: string;
  llama: Llama;
  model: LlamaModel;
  close(): Promise<void>;
}

export interface TinyBatch extends TinyModel {
  context: LlamaContext;
  batch: BatchContext;
}

/** The tiny model of `seed`, generated into a fresh temp dir named after `prefix`. */
export async function loadTinyModel(seed: number, prefix: string): Promise<TinyModel> {
  const dir = mkdtempSync(join(tmpdir(), `ifx-${prefix}-`));
  const { path } = await generateModel({ shape: 'tiny', seed, outPath: join(dir, 'tiny.gguf') });
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 1 });
  const model = await llama.loadModel({ modelPath: path });
  return {
    dir,
    llama,
    model,
    close: async () => {
      await model.dispose();
      await llama.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `loadTinyModel` plus one context (1 thread) and the BatchContext that drives it. */
export async function openTinyBatch(seed: number, prefix: string, o: { contextSize: number; sequences: number; batchSize: number }): Promise<TinyBatch> {
  const tiny = await loadTinyModel(seed, prefix);
  const context = await tiny.model.createContext({ ...o, threads: 1 });
  const batch = new BatchContext(tiny.llama, tiny.model, context);
  return {
    ...tiny,
    context,
    batch,
    close: async () => {
      batch.dispose();
      await context.dispose();
      await tiny.close();
    },
  };
}
