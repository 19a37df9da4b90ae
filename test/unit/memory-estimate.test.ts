import { expect } from 'chai';
import { estimateModelMemory, fitSequences, hostCacheBytes, WORKER_OVERHEAD_BYTES } from '../../src/registry/memory-estimate.js';
import type { ModelMetadata } from '../../src/registry/model-metadata.js';

const GiB = 2 ** 30;
/** An 8B-llama-like shape: 32 layers, 8 KV heads of 128: 128 KiB of f16 KV per token. */
const meta: ModelMetadata = {
  architecture: 'llama',
  parameterCount: 8e9,
  quantization: 'Q8_0',
  contextLength: 8192,
  isMoe: false,
  nExperts: 0,
  nActiveExperts: 0,
  chatTemplate: '',
  poolingType: null,
  layers: 32,
  embeddingLength: 4096,
  headCount: 32,
  headCountKv: 8,
  keyLength: 128,
  valueLength: 128,
};
const model = { meta, fileBytes: 8 * GiB };
const shape = { workers: 2, contextSize: 2048, hostCacheBytes: 0 };

describe('memory estimate: sequences fitted to the budget', () => {
  it('counts K and V of every layer for context x sequences cells per worker', () => {
    const e = estimateModelMemory(meta, 8 * GiB, { ...shape, sequences: 16 });
    expect(e.kvBytesPerWorker).to.equal(16 * 2048 * 128 * 1024);
    expect(e.totalBytes).to.equal(8 * GiB + 2 * (4 * GiB + WORKER_OVERHEAD_BYTES));
  });

  it('counts the host page pools of the workers that keep a prefix cache', () => {
    const MiB = 2 ** 20;
    expect(hostCacheBytes(2, 0, 512), 'two workers x 512 pages of 256 KiB').to.equal(256 * MiB);
    expect(hostCacheBytes(2, 1, 512), 'disaggregated: the prefill worker only').to.equal(128 * MiB);
    expect(hostCacheBytes(2, 0, 0), 'host tier off').to.equal(0);
    const e = estimateModelMemory(meta, 8 * GiB, { ...shape, sequences: 16, hostCacheBytes: 256 * MiB });
    expect(e.hostCacheBytes).to.equal(256 * MiB);
    expect(e.totalBytes).to.equal(8 * GiB + 2 * (4 * GiB + WORKER_OVERHEAD_BYTES) + 256 * MiB);
  });

  it('keeps the most sequences that fit, halving from the wanted count', () => {
    // 16: 8 + 2 x 4 GiB KV; 8: 8 + 2 x 2; 4: 8 + 2 x 1 (plus 2 x 48 MiB overhead each).
    expect(fitSequences([model], shape, 16, 64 * GiB)).to.deep.equal({ sequences: 16, fits: true });
    expect(fitSequences([model], shape, 16, 16 * GiB)).to.deep.equal({ sequences: 8, fits: true });
    expect(fitSequences([model], shape, 16, 12 * GiB)).to.deep.equal({ sequences: 4, fits: true });
    // Two such models need twice the room.
    expect(fitSequences([model, model], shape, 16, 32 * GiB)).to.deep.equal({ sequences: 8, fits: true });
  });

  it('says when even one sequence does not fit', () => {
    expect(fitSequences([model], shape, 16, 8 * GiB)).to.deep.equal({ sequences: 1, fits: false });
  });
});
