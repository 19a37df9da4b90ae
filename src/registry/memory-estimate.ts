/**
 * Bytes a model will take once its engine workers are up, estimated from the GGUF header before
 * any native code runs (the main thread never loads a model, so node-llama-cpp's
 * `estimateContextResourceRequirementsV2`, which needs a loaded `Llama`, is not available here).
 * Measured basis (shared/notes/node-llama-cpp-3.22.1.md §11-12):
 *
 * - Weights are mmapped and shared by every worker for F32/F16/BF16/Q8_0; x86 repacks Q4/IQ4-class
 *   weights into an anonymous buffer per worker, so those count once per worker.
 * - KV cache per worker: K and V, f16, for every layer, `context_size x sequences` cells of
 *   `heads_kv x key_length` (K) and `heads_kv x value_length` (V) values.
 * - Each worker adds ~35-50 MB of its own (V8 isolate, addon, compute buffers): 48 MiB here.
 * - The host tier of the prefix cache: `runtime.paged_kv.cpu_pages` pages of 256 KiB on every
 *   worker that keeps one (all of them, or the prefill workers when disaggregated), allocated
 *   while the worker first idles (KvTier.primeHostPages), not when snapshots first need them.
 */
import type { InferFluxConfig } from '../config/types.js';
import { DEFAULT_PAGE_BYTES } from '../runtime/prefix/page-pool.js';
import type { ModelMetadata } from './model-metadata.js';

/** Per-worker overhead beyond weights and KV (notes §12: 35-50 MB anonymous per worker). */
export const WORKER_OVERHEAD_BYTES = 48 * 1024 * 1024;

/** Weight types llama.cpp's x86 CPU backend repacks per worker (ggml-cpu repack.cpp has kernels for these). */
const REPACKED = new Set(['Q4_0', 'Q4_K', 'IQ4_NL']);

export interface ServingShape {
  /** Engine workers the model runs (decode + prefill). */
  workers: number;
  /** Tokens per sequence. */
  contextSize: number;
  sequences: number;
  /** The host page pools of the model's workers together (`hostCacheBytes`). */
  hostCacheBytes: number;
}

export interface MemoryEstimate {
  weightsBytes: number;
  kvBytesPerWorker: number;
  hostCacheBytes: number;
  totalBytes: number;
}

/**
 * Host page pool bytes of one model's workers: `cpuPages` pages each on the workers that keep a
 * prefix cache (every worker; the prefill workers alone when disaggregated: decode workers keep none).
 */
export function hostCacheBytes(decodeWorkers: number, prefillWorkers: number, cpuPages: number): number {
  return (prefillWorkers > 0 ? prefillWorkers : decodeWorkers) * cpuPages * DEFAULT_PAGE_BYTES;
}

/** The shape every model is served in under `config` (the sequence count as configured or fitted). */
export function servingShape(config: InferFluxConfig): ServingShape {
  const sch = config.scheduler;
  const rt = config.runtime;
  return {
    workers: sch.decodePoolSize + sch.prefillPoolSize,
    contextSize: rt.contextSize,
    sequences: rt.sequencesPerWorker,
    hostCacheBytes: hostCacheBytes(sch.decodePoolSize, sch.prefillPoolSize, rt.pagedKv.cpuPages),
  };
}

export function estimateModelMemory(meta: ModelMetadata, fileBytes: number, shape: ServingShape): MemoryEstimate {
  const cells = shape.contextSize * shape.sequences;
  const kvBytesPerWorker = meta.layers * cells * meta.headCountKv * (meta.keyLength + meta.valueLength) * 2;
  const weightCopies = REPACKED.has(meta.quantization) ? shape.workers : 1;
  const weightsBytes = fileBytes * weightCopies;
  return {
    weightsBytes,
    kvBytesPerWorker,
    hostCacheBytes: shape.hostCacheBytes,
    totalBytes: weightsBytes + shape.workers * (kvBytesPerWorker + WORKER_OVERHEAD_BYTES) + shape.hostCacheBytes,
  };
}

/**
 * The most sequences per worker, from `most` halving down to 1, at which every model in `models`
 * fits `budgetBytes` together (the estimate above); `fits` false when even 1 does not, and then
 * 1. Used for `runtime.sequences_per_worker: auto`, whose packed default (16) doubles the KV cache
 * of the 8 it replaced: a large model on a small machine gets fewer sequences, not an OOM kill.
 */
export function fitSequences(
  models: readonly { meta: ModelMetadata; fileBytes: number }[],
  shape: Omit<ServingShape, 'sequences'>,
  most: number,
  budgetBytes: number,
): { sequences: number; fits: boolean } {
  const total = (sequences: number): number =>
    models.reduce((sum, m) => sum + estimateModelMemory(m.meta, m.fileBytes, { ...shape, sequences }).totalBytes, 0);
  for (let s = most; s >= 1; s = Math.floor(s / 2)) {
    if (total(s) <= budgetBytes) return { sequences: s, fits: true };
  }
  return { sequences: 1, fits: false };
}
