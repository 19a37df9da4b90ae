/**
 * retargetSequenceState against real llama.cpp (tiny generated model, threads 1): a state saved in a
 * context with one stream count loads into another after retargeting and continues identically;
 * anything malformed is refused before native code sees it.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { BatchContext } from '../../src/runtime/llama/batch-adapter.js';
import { SeqStateFormatError, parseSequenceState, retargetSequenceState } from '../../src/runtime/kv/seq-state-file.js';
import { loadTinyModel, type TinyModel } from '../helpers/tiny-llama.js';

describe('retargetSequenceState (llama.cpp sequence state files)', function () {
  this.timeout(120_000);
  let tiny: TinyModel;
  let dir: string;
  let llama: Llama;
  let model: LlamaModel;
  let prompt: Uint32Array;

  before(async () => {
    tiny = await loadTinyModel(11, 'kvstate');
    ({ dir, llama, model } = tiny);
    prompt = Uint32Array.from([model.tokens.bos!, ...model.tokenize('Move this sequence to another context size', false)]);
  });

  after(async () => {
    await tiny?.close();
  });

  async function withBatch<R>(sequences: number, fn: (b: BatchContext) => Promise<R>): Promise<R> {
    const ctx = await model.createContext({ contextSize: 128, sequences, threads: 1, batchSize: 64 });
    const b = new BatchContext(llama, model, ctx);
    try {
      return await fn(b);
    } finally {
      b.dispose();
      await ctx.dispose();
    }
  }

  /** The prompt minus its last token is in `seq`; decode the last token and n greedy more. */
  async function continueGreedy(b: BatchContext, seq: number, n: number): Promise<number[]> {
    const s = b.createSampler();
    s.applyConfig({ temperature: 0 });
    const out: number[] = [];
    let pos = prompt.length - 1;
    let [idx] = await b.decode([{ sequenceId: seq, position: pos, tokens: prompt.subarray(pos), wantLogits: true }]);
    for (let i = 0; i < n; i++) {
      const t = await b.sample(idx!, s);
      out.push(t);
      [idx] = await b.decode([{ sequenceId: seq, position: ++pos, tokens: Uint32Array.of(t), wantLogits: true }]);
    }
    s.dispose();
    return out;
  }

  /** Prefill the prompt minus its last token into `seq`, save it, and continue greedily at the source. */
  async function saveFrom(sequences: number, seq: number, file: string): Promise<number[]> {
    return withBatch(sequences, async (b) => {
      const prefix = prompt.subarray(0, prompt.length - 1);
      await b.decode([{ sequenceId: seq, position: 0, tokens: prefix, wantLogits: false }]);
      await b.saveSequence(seq, prefix, file);
      return continueGreedy(b, seq, 12);
    });
  }

  async function loadInto(sequences: number, seq: number, file: string): Promise<number[]> {
    return withBatch(sequences, async (b) => {
      const tokens = await b.loadSequence(seq, file, 128);
      expect(Array.from(tokens)).to.deep.equal(Array.from(prompt.subarray(0, prompt.length - 1)));
      return continueGreedy(b, seq, 12);
    });
  }

  it('1 -> 4: a one-sequence save loads into sequence 2 of a 4-sequence context and continues identically', async () => {
    const src = join(dir, 'one.bin');
    const source = await saveFrom(1, 0, src);
    const original = new Uint8Array(readFileSync(src));
    const layout = parseSequenceState(original);
    expect(layout).to.include({ tokenCount: prompt.length - 1, streamCount: 1, stream: 0, cellCount: prompt.length - 1 });

    const retargeted = retargetSequenceState(original, 4);
    expect(retargeted.byteLength).to.equal(original.byteLength + 3 * 4);
    expect(parseSequenceState(retargeted)).to.include({ streamCount: 4, stream: 0, cellCount: prompt.length - 1 });
    const dst = join(dir, 'one-as-four.bin');
    writeFileSync(dst, retargeted);
    expect(await loadInto(4, 2, dst)).to.deep.equal(source);
  });

  it('4 -> 1: sequence 3 of a 4-sequence context loads into a 1-sequence context and continues identically', async () => {
    const src = join(dir, 'four.bin');
    const source = await saveFrom(4, 3, src);
    const original = new Uint8Array(readFileSync(src));
    expect(parseSequenceState(original)).to.include({ streamCount: 4, stream: 3 });
    const dst = join(dir, 'four-as-one.bin');
    writeFileSync(dst, retargetSequenceState(original, 1));
    expect(await loadInto(1, 0, dst)).to.deep.equal(source);
  });

  it('without retargeting the stream count mismatch is refused by llama.cpp (the premise)', async () => {
    const src = join(dir, 'premise.bin');
    await saveFrom(1, 0, src);
    let err: unknown;
    await withBatch(2, (b) => b.loadSequence(1, src, 128)).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(Error);
  });

  it('retargeting to the same stream count and position is the identity', async () => {
    const src = join(dir, 'same.bin');
    await saveFrom(4, 1, src);
    const original = new Uint8Array(readFileSync(src));
    expect(Buffer.from(retargetSequenceState(original, 4, 1)).equals(Buffer.from(original))).to.equal(true);
  });

  describe('validation (no file reaches native code unless it parses exactly)', () => {
    let good: Uint8Array;
    before(async () => {
      const src = join(dir, 'good.bin');
      await saveFrom(2, 1, src);
      good = new Uint8Array(readFileSync(src));
    });

    const mutate = (f: (b: Uint8Array, dv: DataView) => Uint8Array | void): Uint8Array => {
      const b = good.slice();
      return f(b, new DataView(b.buffer)) ?? b;
    };
    const refuses = (bytes: Uint8Array, pattern: RegExp): void => {
      expect(() => retargetSequenceState(bytes, 4)).to.throw(SeqStateFormatError, pattern);
    };
    const tokensEnd = (): number => 12 + 4 * new DataView(good.buffer, good.byteOffset).getUint32(8, true);

    it('bad magic and version', () => {
      refuses(mutate((b) => void (b[0] = 0)), /bad magic/);
      refuses(mutate((_, dv) => dv.setUint32(4, 2, true)), /unsupported version 2/);
    });

    it('token count past the end, truncation, trailing bytes', () => {
      refuses(mutate((_, dv) => dv.setUint32(8, 1e6, true)), /token count 1000000 exceeds/);
      refuses(good.subarray(0, 10), /truncated/);
      refuses(good.subarray(0, good.byteLength - 1), /parse|non-empty/);
      refuses(good.subarray(0, good.byteLength - 100), /parse|non-empty/);
      const longer = new Uint8Array(good.byteLength + 4);
      longer.set(good);
      longer[longer.byteLength - 1] = 7;
      refuses(longer, /does not parse|non-empty/);
    });

    it('n_stream out of range, no non-empty stream, two non-empty streams', () => {
      refuses(mutate((_, dv) => dv.setUint32(tokensEnd(), 0, true)), /n_stream 0 out of range/);
      refuses(mutate((_, dv) => dv.setUint32(tokensEnd(), 300, true)), /n_stream 300 out of range/);
      // Stream 1 holds the cells; zero its count -> every stream empty, the rest is garbage.
      const layout = parseSequenceState(good);
      expect(layout.stream).to.equal(1);
      refuses(mutate((_, dv) => dv.setUint32(layout.blockStart, 0, true)), /no stream holds any cells|parse|non-empty/);
      const head = good.subarray(0, tokensEnd());
      const block = good.subarray(layout.blockStart, layout.blockEnd);
      const two = new Uint8Array(head.byteLength + 4 + 2 * block.byteLength);
      two.set(head);
      new DataView(two.buffer).setUint32(head.byteLength, 2, true);
      two.set(block, head.byteLength + 4);
      two.set(block, head.byteLength + 4 + block.byteLength);
      refuses(two, /parse|non-empty/);
    });

    it('cell metadata and tensor headers are checked', () => {
      const { blockStart } = parseSequenceState(good);
      // First cell's n_seq_id must be 1.
      refuses(mutate((_, dv) => dv.setUint32(blockStart + 4 + 4, 2, true)), /does not parse/);
      // Cell count one too high: the walk no longer ends at the block end.
      refuses(mutate((_, dv) => dv.setUint32(blockStart, dv.getUint32(blockStart, true) + 1, true)), /does not parse/);
    });

    it('argument ranges', () => {
      expect(() => retargetSequenceState(good, 0)).to.throw(RangeError);
      expect(() => retargetSequenceState(good, 257)).to.throw(RangeError);
      expect(() => retargetSequenceState(good, 2.5)).to.throw(RangeError);
      expect(() => retargetSequenceState(good, 4, 4)).to.throw(RangeError);
    });
  });
});
