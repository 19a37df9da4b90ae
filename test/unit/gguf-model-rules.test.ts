/**
 * The llama.cpp rules validation mirrors (src/runtime/gguf/model-rules.ts), one edit of the
 * generated tiny model per rule. Each of these files passed the old validation; the first ones
 * aborted the process inside llama.cpp (GGML_ASSERT), the relabelled array was served.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GgufValueType as V } from '../../src/runtime/gguf/format.js';
import { generateModel } from '../../src/runtime/gguf/generate.js';
import { GgufFormatError, validateGguf, type GgufProblem } from '../../src/runtime/gguf/reader.js';
import { serialize, splitGguf, type RawGguf } from '../helpers/gguf-mutate.js';

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};

describe('gguf model rules (what llama.cpp asserts on)', () => {
  let dir: string;
  let base: Buffer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-rules-'));
    base = readFileSync((await generateModel({ shape: 'tiny', outPath: join(dir, 'base.gguf') })).path);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  let n = 0;
  async function refused(edit: (g: RawGguf) => void, reason: GgufProblem, message: string): Promise<void> {
    const g = splitGguf(base);
    edit(g);
    const path = join(dir, `case-${n++}.gguf`);
    writeFileSync(path, serialize(g));
    let err: unknown = null;
    try {
      await validateGguf(path);
    } catch (e) {
      err = e;
    }
    expect(err, message).to.be.instanceOf(GgufFormatError);
    expect((err as GgufFormatError).reason).to.equal(reason);
    expect((err as GgufFormatError).message).to.equal(`invalid GGUF ${path}: ${message}`);
  }
  const set = (g: RawGguf, key: string, type: number, payload: Buffer) => {
    const kv = g.kvs.find((k) => k.key === key);
    if (kv) Object.assign(kv, { type, payload });
    else g.kvs.push({ key, type, payload });
  };

  it('accepts the generated model', async () => {
    await validateGguf(join(dir, 'base.gguf'));
  });

  it('refuses block_count beyond LLAMA_MAX_LAYERS (512) and 0', async () => {
    await refused((g) => set(g, 'llama.block_count', V.UINT32, u32(100000)), 'limit_exceeded', 'llama.block_count is 100000, llama.cpp allows 1..512');
    await refused((g) => set(g, 'llama.block_count', V.UINT32, u32(0)), 'limit_exceeded', 'llama.block_count is 0, llama.cpp allows 1..512');
  });

  it('refuses an array relabelled to another element type over the same bytes', async () => {
    await refused(
      (g) => (g.kvs.find((k) => k.key === 'tokenizer.ggml.scores')!.elem = V.INT32),
      'bad_value',
      'tokenizer.ggml.scores is an array of int32, llama.cpp reads an array of float32',
    );
    await refused(
      (g) => (g.kvs.find((k) => k.key === 'tokenizer.ggml.token_type')!.elem = V.UINT32),
      'bad_value',
      'tokenizer.ggml.token_type is an array of uint32, llama.cpp reads an array of int32',
    );
  });

  it('refuses a scalar of the wrong type', async () => {
    await refused((g) => (g.kvs.find((k) => k.key === 'llama.attention.head_count')!.type = V.INT32), 'bad_value', 'llama.attention.head_count is int32, llama.cpp reads it as uint32 (or a per-layer array)');
  });

  it('refuses expert counts llama.cpp asserts on', async () => {
    await refused((g) => set(g, 'llama.expert_count', V.UINT32, u32(1025)), 'limit_exceeded', 'llama.expert_count is 1025, llama.cpp allows at most 1024');
    await refused((g) => set(g, 'llama.expert_used_count', V.UINT32, u32(2)), 'bad_value', 'llama.expert_used_count 2 exceeds expert_count 0');
    await refused((g) => set(g, 'llama.expert_group_count', V.UINT32, u32(4)), 'bad_value', 'llama.expert_group_count is 4 without experts');
  });

  it('refuses an unknown rope scaling type and a nextn count above block_count', async () => {
    const s = Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('bogus')]);
    await refused((g) => set(g, 'llama.rope.scaling.type', V.STRING, s), 'bad_value', 'llama.rope.scaling.type "bogus" is not one of none, linear, yarn, longrope');
    await refused((g) => set(g, 'llama.nextn_predict_layers', V.UINT32, u32(3)), 'bad_value', 'llama.nextn_predict_layers 3 exceeds block_count 2');
  });

  it('refuses head sizes the llama graph asserts are equal', async () => {
    await refused((g) => set(g, 'llama.attention.key_length', V.UINT32, u32(8)), 'bad_value', 'llama head sizes disagree: key_length 8, value_length 16, rope.dimension_count 16 must be equal and >= 1');
    await refused((g) => set(g, 'llama.attention.head_count_kv', V.UINT32, u32(3)), 'bad_value', 'llama.attention.head_count 4 is not a multiple of head_count_kv 3');
  });

  it('refuses duplicate tokens (asserted by the vocabulary loader) and a BOS outside the vocabulary', async () => {
    const dupVocab = (g: RawGguf) => {
      const kv = g.kvs.find((k) => k.key === 'tokenizer.ggml.tokens')!;
      // Token 6 is "<0x01>": make it a second "<0x00>" (same length, so only the text changes).
      const at = kv.payload.indexOf('<0x01>');
      kv.payload = Buffer.from(kv.payload);
      kv.payload.write('<0x00>', at);
    };
    await refused(dupVocab, 'bad_value', 'tokenizer.ggml.tokens[6] "<0x00>" is a duplicate token');
    await refused((g) => set(g, 'tokenizer.ggml.bos_token_id', V.UINT32, u32(5000)), 'bad_value', 'tokenizer.ggml.bos_token_id 5000 is outside the 2048-token vocabulary');
  });

  it('refuses tensor shapes that do not follow from the hyperparameters', async () => {
    await refused((g) => (g.tensors.find((t) => t.name === 'blk.1.attn_k.weight')!.dims = [32n, 64n]), 'bad_tensor', 'tensor "blk.1.attn_k.weight" has shape [32, 64], the hyperparameters give [64, 32]');
    await refused((g) => (g.tensors = g.tensors.filter((t) => t.name !== 'blk.0.ffn_up.weight')), 'bad_tensor', 'tensor "blk.0.ffn_up.weight" is missing');
    await refused((g) => (g.tensors.find((t) => t.name === 'output_norm.weight')!.type = 1), 'bad_tensor', 'tensor "output_norm.weight" has type F16, not usable for a vector (F32 only)');
  });
});
