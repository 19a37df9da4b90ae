/**
 * LoRA adapter generator and the adapter checks against the base model (runtime/gguf/lora.ts):
 * the generated file is byte-identical per seed and passes; each mutation llama.cpp would abort
 * on (wrong metadata types) or refuse (names, shapes, halves) is refused naming the key or tensor.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GgufValueType as V } from '../../src/runtime/gguf/format.js';
import { generateModel } from '../../src/runtime/gguf/generate.js';
import { generateLora, validateLoraFile } from '../../src/runtime/gguf/lora.js';
import { GgufFormatError, readGgufHeader, type GgufInfo } from '../../src/runtime/gguf/reader.js';
import { serialize, splitGguf, type RawGguf } from '../helpers/gguf-mutate.js';

describe('LoRA adapters: generator and checks against the base', () => {
  let dir: string;
  let base: GgufInfo;
  let adapter: Buffer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-lora-unit-'));
    await generateModel({ shape: 'tiny', seed: 0, outPath: join(dir, 'tiny.gguf') });
    base = await readGgufHeader(join(dir, 'tiny.gguf'));
    await generateLora({ base, seed: 1, outPath: join(dir, 'a.gguf') });
    adapter = readFileSync(join(dir, 'a.gguf'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function check(mutate: (g: RawGguf) => void): Promise<string> {
    const g = splitGguf(adapter);
    mutate(g);
    const file = join(dir, 'm.gguf');
    writeFileSync(file, serialize(g));
    try {
      await validateLoraFile(file, base);
    } catch (err) {
      expect(err).to.be.instanceOf(GgufFormatError);
      return (err as Error).message.replace(`invalid LoRA adapter ${file}: `, '');
    }
    return 'accepted';
  }

  it('the generated adapter passes: rank 8, alpha 16, attn_q/attn_v/ffn_down per layer and output', async () => {
    const info = await validateLoraFile(join(dir, 'a.gguf'), base);
    expect(info).to.deep.equal({
      architecture: 'llama',
      alpha: 16,
      rank: 8,
      targets: ['blk.0.attn_q.weight', 'blk.0.attn_v.weight', 'blk.0.ffn_down.weight', 'blk.1.attn_q.weight', 'blk.1.attn_v.weight', 'blk.1.ffn_down.weight', 'output.weight'],
    });
  });

  it('is byte-identical for the same seed and differs for another', async () => {
    await generateLora({ base, seed: 1, outPath: join(dir, 'a-again.gguf') });
    await generateLora({ base, seed: 2, outPath: join(dir, 'b.gguf') });
    expect(readFileSync(join(dir, 'a-again.gguf')).equals(adapter)).to.equal(true);
    expect(readFileSync(join(dir, 'b.gguf')).equals(adapter)).to.equal(false);
  });

  it('refuses a model given as an adapter', async () => {
    try {
      await validateLoraFile(join(dir, 'tiny.gguf'), base);
      expect.fail('accepted');
    } catch (err) {
      expect((err as Error).message).to.match(/general\.type is missing$/);
    }
  });

  const f32 = (v: number): Buffer => Buffer.from(Float32Array.of(v).buffer);
  const cases: [string, (g: RawGguf) => void, string][] = [
    ['alpha stored as u32 (llama.cpp asserts f32)', (g) => Object.assign(g.kvs.find((k) => k.key === 'adapter.lora.alpha')!, { type: V.UINT32 }), 'adapter.lora.alpha is uint32, llama.cpp reads it as float32'],
    ['alpha NaN', (g) => Object.assign(g.kvs.find((k) => k.key === 'adapter.lora.alpha')!, { payload: f32(NaN) }), 'adapter.lora.alpha is NaN, expected a finite number'],
    ['general.type stored as u32 bytes', (g) => Object.assign(g.kvs.find((k) => k.key === 'general.type')!, { type: V.UINT64, payload: Buffer.alloc(8) }), 'general.type is uint64, llama.cpp reads it as a string'],
    ['adapter.type not lora', (g) => Object.assign(g.kvs.find((k) => k.key === 'adapter.type')!, { payload: Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('ia3x')]) }), 'adapter.type is "ia3x", only "lora" is supported'],
    ['other architecture', (g) => Object.assign(g.kvs.find((k) => k.key === 'general.architecture')!, { payload: Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('qwen')]) }), 'general.architecture is "qwen", the base model is "llama"'],
    ['alpha missing', (g) => (g.kvs = g.kvs.filter((k) => k.key !== 'adapter.lora.alpha')), 'adapter.lora.alpha is missing'],
    ['a lora_b half missing', (g) => (g.tensors = g.tensors.filter((t) => t.name !== 'blk.0.attn_q.weight.lora_b')), 'tensor pair for "blk.0.attn_q.weight" is missing its .lora_b half'],
    ['a tensor the base lacks', (g) => (g.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!.name = 'blk.9.attn_q.weight.lora_a', g.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_b')!.name = 'blk.9.attn_q.weight.lora_b'), '"blk.9.attn_q.weight" is not a tensor of the base model (wrong base model?)'],
    ['a name without a lora suffix', (g) => (g.tensors[0]!.name = 'blk.0.attn_q.weight'), 'tensor "blk.0.attn_q.weight" is not a .lora_a or .lora_b tensor'],
    ['lora_a transposed', (g) => (g.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!.dims = [8n, 64n]), 'tensor "blk.0.attn_q.weight.lora_a" has shape [8, 64], expected [64, rank] for base [64, 64]'],
    ['rank mismatch between halves', (g) => (g.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_b')!.dims = [4n, 128n]), 'tensor "blk.0.attn_q.weight.lora_b" has shape [4, 128], expected [8, 64] (rank 8, base [64, 64])'],
    ['a 3-D half', (g) => (g.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!.dims = [64n, 4n, 2n]), 'tensor "blk.0.attn_q.weight.lora_a" has shape [64, 4, 2]; LoRA halves are 2-D'],
    ['a quantised half', (g) => (g.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!.type = 2), 'tensor "blk.0.attn_q.weight.lora_a" has type Q4_0; LoRA halves must be F32 or F16'],
  ];
  for (const [name, mutate, message] of cases) {
    it(`refuses ${name}`, async () => {
      expect(await check(mutate)).to.equal(message);
    });
  }
});
