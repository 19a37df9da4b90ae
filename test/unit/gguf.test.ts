import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { LlamaLogLevel, getLlama, type Llama, type LlamaContext, type LlamaModel, type Token } from 'node-llama-cpp';
import { GGML_TYPES, GgmlType, GgufValueType, TokenType } from '../../src/runtime/gguf/format.js';
import { ensureModel, generateModel } from '../../src/runtime/gguf/generate.js';
import { dequantizeQ8_0, f16BitsToF32, f32ToF16Bits, quantizeQ8_0, toF16 } from '../../src/runtime/gguf/quant.js';
import { GgufFormatError, readGgufHeader, validateGguf, type GgufProblem } from '../../src/runtime/gguf/reader.js';
import { SHAPES, countParameters, planTensors } from '../../src/runtime/gguf/shapes.js';
import { MIN_VOCAB, buildVocab } from '../../src/runtime/gguf/vocab.js';
import { gv, writeGguf, type GgufMetadata } from '../../src/runtime/gguf/writer.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gguf-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One thread: more threads on this shared 2-core box spin in ggml barriers and run ~100x slower. */
const LLAMA_OPTIONS = { gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 1 } as const;

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

/** Asserts `fn` rejects with a GgufFormatError of `reason` whose message matches `text`. */
async function expectProblem(fn: () => Promise<unknown>, reason: GgufProblem, text: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    expect(err).to.be.instanceOf(GgufFormatError);
    expect((err as GgufFormatError).reason, (err as Error).message).to.equal(reason);
    expect((err as Error).message).to.match(text);
    return;
  }
  expect.fail(`expected a ${reason} GgufFormatError`);
}

/** Hand-assembles GGUF bytes, so tests can write headers our writer would refuse to produce. */
class Raw {
  private parts: Buffer[] = [];
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.parts.push(b); return this; }
  u64(v: bigint | number) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.parts.push(b); return this; }
  str(s: string) { const b = Buffer.from(s); return this.u64(b.length).bytes(b); }
  bytes(b: Uint8Array) { this.parts.push(Buffer.from(b)); return this; }
  tensor(name: string, dims: number[], type: number, offset: number | bigint) {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  /** Pads to 32 bytes and appends `dataBytes` zero bytes of tensor data. */
  data(dataBytes: number) {
    const len = this.parts.reduce((n, p) => n + p.length, 0);
    return this.bytes(new Uint8Array((32 - (len % 32)) % 32 + dataBytes));
  }
  async save(name: string) { const p = join(dir, name); await writeFile(p, Buffer.concat(this.parts)); return p; }
}
const header = (tensors: number | bigint, kvs: number | bigint) => new Raw().u32(0x46554747).u32(3).u64(tensors).u64(kvs);

describe('gguf quant', () => {
  it('converts float32 to f16 bits with round-to-nearest-even, overflow and subnormals', () => {
    expect(f32ToF16Bits(1)).to.equal(0x3c00);
    expect(f32ToF16Bits(-2)).to.equal(0xc000);
    expect(f32ToF16Bits(65504)).to.equal(0x7bff);
    expect(f32ToF16Bits(70000)).to.equal(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).to.equal(0x0001);
    expect(f32ToF16Bits(2 ** -26)).to.equal(0);
    expect(f32ToF16Bits(1 + 2 ** -11)).to.equal(0x3c00); // tie rounds to even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).to.equal(0x3c02);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).to.equal(true);
    for (const x of [0.1, -3.14159, 1e-3, 1234.5]) expect(Math.abs(f16BitsToF32(f32ToF16Bits(x)) - x)).to.be.lessThan(Math.abs(x) * 2 ** -10);
    expect([...toF16(Float32Array.of(1, -2))]).to.deep.equal([0x00, 0x3c, 0x00, 0xc0]);
  });

  it('Q8_0 round trip error is at most half a step plus the f16 scale error', () => {
    const x = new Float32Array(32 * 64);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 12.9898) * (1 + (i >> 5));
    x.fill(0, 0, 32); // an all-zero block must stay zero (scale 0, no division by zero)
    const q = quantizeQ8_0(x);
    expect(q.length).to.equal(64 * 34);
    const y = dequantizeQ8_0(q);
    for (let b = 0; b < 64; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
      const bound = amax / 254 + amax * 2 ** -10;
      for (let j = 0; j < 32; j++) expect(Math.abs(y[b * 32 + j]! - x[b * 32 + j]!)).to.be.at.most(bound);
    }
    expect([...y.subarray(0, 32)].every((v) => v === 0)).to.equal(true);
    expect(() => quantizeQ8_0(new Float32Array(31))).to.throw(/multiple of 32/);
  });
});

describe('gguf format tables', () => {
  it('block and type sizes match the bundled llama.cpp', async function () {
    const llama = await getLlama(LLAMA_OPTIONS);
    try {
      const b = (llama as unknown as { _bindings: { getBlockSizeForGgmlType(t: number): number; getTypeSizeForGgmlType(t: number): number } })._bindings;
      for (const [type, traits] of Object.entries(GGML_TYPES)) {
        expect([b.getBlockSizeForGgmlType(Number(type)), b.getTypeSizeForGgmlType(Number(type))], traits.name).to.deep.equal([traits.blockSize, traits.typeSize]);
      }
    } finally {
      await llama.dispose();
    }
  });
});

describe('gguf writer/reader round trip', () => {
  const metadata: GgufMetadata = [
    ['general.architecture', gv.string('test')],
    ['general.alignment', gv.u32(64)],
    ['t.u32', gv.u32(4_000_000_000)],
    ['t.i32', gv.i32(-7)],
    ['t.f32', gv.f32(0.1)],
    ['t.bool', gv.bool(true)],
    ['t.u64', gv.u64(2n ** 40n)],
    ['t.utf8', gv.string('héllo ▁ 日本 🎉')],
    ['t.strings', gv.strings(['a', '', 'ü'])],
    ['t.f32s', gv.f32s([1.5, -2])],
    ['t.i32s', gv.i32s(Int32Array.of(3, -4))],
  ];
  const a = Float32Array.from({ length: 15 }, (_, i) => i - 7);
  const b = toF16(Float32Array.from({ length: 64 }, (_, i) => i / 8));
  const c = quantizeQ8_0(Float32Array.from({ length: 64 }, (_, i) => Math.cos(i)));

  it('reads back header, typed metadata, tensor infos, aligned offsets and data', async () => {
    const path = join(dir, 'roundtrip.gguf');
    const res = await writeGguf(path, metadata, [
      { name: 'a', dims: [3, 5], type: GgmlType.F32, data: () => [new Uint8Array(a.buffer)] },
      { name: 'b', dims: [64], type: GgmlType.F16, data: () => [b.subarray(0, 50), b.subarray(50)] },
      { name: 'c', dims: [32, 2], type: GgmlType.Q8_0, data: () => [c] },
    ]);
    expect(res.bytes).to.equal((await stat(path)).size);
    expect(res.sha256).to.equal(await sha256(path));

    const info = await readGgufHeader(path);
    expect(info.version).to.equal(3);
    expect(info.alignment).to.equal(64);
    expect({ ...info.metadata }).to.deep.equal({
      'general.architecture': 'test',
      'general.alignment': 64,
      't.u32': 4_000_000_000,
      't.i32': -7,
      't.f32': Math.fround(0.1),
      't.bool': true,
      't.u64': 2n ** 40n,
      't.utf8': 'héllo ▁ 日本 🎉',
      't.strings': ['a', '', 'ü'],
      't.f32s': [1.5, -2],
      't.i32s': [3, -4],
    });
    expect(info.metadataTypes['t.u32']).to.equal(GgufValueType.UINT32);
    expect(info.metadataTypes['t.i32']).to.equal(GgufValueType.INT32);
    expect(info.metadataTypes['t.u64']).to.equal(GgufValueType.UINT64);
    expect(info.metadataTypes['t.strings']).to.equal(GgufValueType.ARRAY);
    expect(info.arrayTypes['t.strings']).to.equal(GgufValueType.STRING);
    expect(info.dataOffset % 64).to.equal(0);
    expect(info.tensors.map((t) => [t.name, t.dims, t.typeName, t.offset, t.byteLength])).to.deep.equal([
      ['a', [3, 5], 'F32', 0, 60],
      ['b', [64], 'F16', 64, 128],
      ['c', [32, 2], 'Q8_0', 192, 68],
    ]);
    const file = await readFile(path);
    for (const [t, want] of [[info.tensors[0]!, new Uint8Array(a.buffer)], [info.tensors[1]!, b], [info.tensors[2]!, c]] as const) {
      expect(t.absoluteOffset % 64).to.equal(0);
      expect(Buffer.compare(file.subarray(t.absoluteOffset, t.absoluteOffset + t.byteLength), Buffer.from(want))).to.equal(0);
    }
  });

  it('reads arrays that straddle the reader\'s 1 MiB window', async () => {
    const strings = Array.from({ length: 100_000 }, (_, i) => `piece-${i}-${'x'.repeat(i % 17)}`);
    const floats = Float32Array.from({ length: 400_000 }, (_, i) => i / 4);
    const path = join(dir, 'big-arrays.gguf');
    await writeGguf(path, [['s', gv.strings(strings)], ['f', gv.f32s(floats)], ['after', gv.string('end')]], []);
    const info = await readGgufHeader(path);
    expect(info.metadata['s']).to.deep.equal(strings);
    expect(info.metadata['f']).to.deep.equal([...floats]);
    expect(info.metadata['after']).to.equal('end');
  });

  it('refuses a producer that yields the wrong byte count and leaves no file behind', async () => {
    const path = join(dir, 'short', 'x.gguf');
    await mkdir(join(dir, 'short'));
    let err: unknown;
    try {
      await writeGguf(path, [], [{ name: 'a', dims: [4], type: GgmlType.F32, data: () => [new Uint8Array(12)] }]);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.match(/producer gave 12 bytes, expected 16/);
    expect(await readdir(join(dir, 'short'))).to.deep.equal([]);
  });
});

describe('gguf reader rejects corrupted files', () => {
  let good: string;
  before(async () => {
    good = join(dir, 'good.gguf');
    await writeGguf(good, [['general.architecture', gv.string('llama')], ['x', gv.strings(['a', 'b'])]], [
      { name: 'w', dims: [32, 4], type: GgmlType.F32, data: () => [new Uint8Array(512)] },
    ]);
  });

  it('bad magic', async () => {
    const bytes = await readFile(good);
    bytes.write('GGML', 0);
    const p = join(dir, 'magic.gguf');
    await writeFile(p, bytes);
    await expectProblem(() => readGgufHeader(p), 'bad_magic', /magic is 0x4c4d4747, expected "GGUF"/);
  });

  it('unsupported and big-endian versions', async () => {
    await expectProblem(async () => readGgufHeader(await new Raw().u32(0x46554747).u32(1).u64(0).u64(0).save('v1.gguf')), 'unsupported_version', /version 1 is not 2 or 3/);
    await expectProblem(async () => readGgufHeader(await new Raw().u32(0x46554747).u32(0x03000000).u64(0).u64(0).save('be.gguf')), 'unsupported_version', /big-endian/);
  });

  it('truncated inside the metadata and inside the tensor data', async () => {
    const size = (await stat(good)).size;
    const inMeta = join(dir, 'trunc-meta.gguf');
    await writeFile(inMeta, (await readFile(good)).subarray(0, 60)); // inside the first value's length
    await expectProblem(() => readGgufHeader(inMeta), 'truncated', /file ends inside/);
    const inData = join(dir, 'trunc-data.gguf');
    await writeFile(inData, await readFile(good));
    await truncate(inData, size - 100);
    await expectProblem(() => readGgufHeader(inData), 'out_of_range', /tensor "w" data .* runs past the end/);
    await expectProblem(async () => readGgufHeader(await new Raw().bytes(Buffer.from('GG')).save('tiny.gguf')), 'truncated', /too short/);
  });

  it('absurd counts and lengths', async () => {
    await expectProblem(async () => readGgufHeader(await header(2n ** 40n, 0).save('nt.gguf')), 'limit_exceeded', /tensor_count 1099511627776 exceeds/);
    await expectProblem(async () => readGgufHeader(await header(0, 2n ** 64n - 1n).save('nkv.gguf')), 'limit_exceeded', /kv_count/);
    await expectProblem(async () => readGgufHeader(await header(0, 1).u64(2n ** 62n).bytes(new Uint8Array(16)).save('klen.gguf')), 'limit_exceeded', /key #0 length/);
    await expectProblem(async () => readGgufHeader(await header(0, 1).u64(1000).bytes(Buffer.from('abcdefghijklmnop')).save('klen2.gguf')), 'truncated', /key #0 length 1000 needs at least 1000 bytes, only 16 left/);
    await expectProblem(async () => readGgufHeader(await header(1000, 0).save('nt2.gguf')), 'truncated', /tensor_count 1000 needs/);
    const arr = (n: bigint) => header(0, 1).str('a').u32(GgufValueType.ARRAY).u32(GgufValueType.UINT32).u64(n);
    await expectProblem(async () => readGgufHeader(await arr(2n ** 40n).save('alen.gguf')), 'limit_exceeded', /length of "a" 1099511627776 exceeds the limit/);
    await expectProblem(async () => readGgufHeader(await arr(1_000_000n).save('alen2.gguf')), 'truncated', /length of "a" 1000000 needs at least 4000000 bytes, only 0 left/);
    const nested = header(0, 1).str('a').u32(GgufValueType.ARRAY).u32(GgufValueType.ARRAY).u64(0);
    await expectProblem(async () => readGgufHeader(await nested.save('nested.gguf')), 'bad_value', /nested array/);
    await expectProblem(async () => readGgufHeader(await header(0, 1).str('a').u32(99).u32(0).save('vt.gguf')), 'bad_value', /unknown value type 99/);
    await expectProblem(async () => readGgufHeader(await header(0, 2).str('a').u32(4).u32(1).str('a').u32(4).u32(1).save('dupk.gguf')), 'duplicate', /duplicate key "a"/);
  });

  it('tensor infos: dims, types, alignment, range and overlap', async () => {
    const one = (dims: number[], type: number, offset: number | bigint, data = 4096) => header(1, 0).tensor('w', dims, type, offset).data(data);
    await expectProblem(async () => readGgufHeader(await one([32, 4], 8, 2n ** 60n).save('far.gguf')), 'out_of_range', /tensor "w" data .* runs past the end/);
    await expectProblem(async () => readGgufHeader(await one([4], 0, 8).save('mis.gguf')), 'misaligned', /offset 8 is not a multiple of the alignment 32/);
    await expectProblem(async () => readGgufHeader(await one([4], 77, 0).save('type.gguf')), 'bad_tensor', /unknown ggml type 77/);
    await expectProblem(async () => readGgufHeader(await one([33], 8, 0).save('blk.gguf')), 'bad_tensor', /not a multiple of the Q8_0 block size 32/);
    await expectProblem(async () => readGgufHeader(await one([4, 0], 0, 0).save('zero.gguf')), 'bad_tensor', /ne\[1\] = 0 is out of range/);
    await expectProblem(async () => readGgufHeader(await one([1, 1, 1, 1, 1], 0, 0).save('dims.gguf')), 'bad_tensor', /5 dims/);
    // Four 2^31 dims: 2^124 bytes, which wraps a 64-bit size_t; BigInt math must see it is too big.
    const huge = 2 ** 31;
    await expectProblem(async () => readGgufHeader(await one([huge, huge, huge, huge], 0, 0).save('wrap.gguf')), 'out_of_range', /runs past the end/);
    const overlap = header(2, 0).tensor('a', [64], 0, 0).tensor('b', [64], 0, 128).data(512);
    await expectProblem(async () => readGgufHeader(await overlap.save('overlap.gguf')), 'overlap', /tensor "b" data overlaps tensor "a"/);
    const dup = header(2, 0).tensor('a', [8], 0, 0).tensor('a', [8], 0, 32).data(512);
    await expectProblem(async () => readGgufHeader(await dup.save('dupt.gguf')), 'duplicate', /duplicate tensor "a"/);
    const badAlign = header(0, 1).str('general.alignment').u32(GgufValueType.UINT32).u32(48);
    await expectProblem(async () => readGgufHeader(await badAlign.save('align.gguf')), 'bad_value', /general.alignment must be a non-zero u32 power of two/);
  });

  it('validateGguf requires general.architecture', async () => {
    const p = await header(0, 0).save('noarch.gguf');
    expect((await readGgufHeader(p)).tensors).to.deep.equal([]);
    await expectProblem(() => validateGguf(p), 'missing_key', /general.architecture is missing/);
  });
});

describe('gguf vocab', () => {
  it('has the fixed special ids, 256 byte tokens and unique pieces with prefix paths', () => {
    const v = buildVocab(SHAPES.tiny.nVocab);
    expect(v.tokens.slice(0, 5)).to.deep.equal(['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>']);
    expect([...v.types.slice(0, 5)]).to.deep.equal([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.CONTROL, TokenType.CONTROL]);
    expect(v.tokens[5]).to.equal('<0x00>');
    expect(v.tokens[5 + 0xab]).to.equal('<0xAB>');
    expect(v.types.filter((t) => t === TokenType.BYTE).length).to.equal(256);
    expect(new Set(v.tokens).size).to.equal(v.tokens.length);
    const set = new Set(v.tokens);
    for (let i = MIN_VOCAB; i < v.tokens.length; i++) {
      const cps = [...v.tokens[i]!];
      expect(set.has(cps.slice(0, -1).join('')), v.tokens[i]).to.equal(true);
      expect(v.scores[i]!).to.be.greaterThan(v.scores[MIN_VOCAB - 1]!);
    }
    expect(buildVocab(32000).tokens.length).to.equal(32000);
    expect(() => buildVocab(10)).to.throw(/vocab size must be/);
  });
});

describe('gguf model generation', () => {
  it('is deterministic per seed, under 2 MB for tiny, and lists the llama tensors', async () => {
    const a = await generateModel({ shape: 'tiny', seed: 1, outPath: join(dir, 'a.gguf') });
    const b = await generateModel({ shape: 'tiny', seed: 1, outPath: join(dir, 'b.gguf') });
    const c = await generateModel({ shape: 'tiny', seed: 2, outPath: join(dir, 'c.gguf') });
    expect(a.sha256).to.equal(b.sha256);
    expect(await sha256(a.path)).to.equal(a.sha256);
    expect(await sha256(b.path)).to.equal(a.sha256);
    expect(c.sha256).to.not.equal(a.sha256);
    expect(a.bytes).to.equal((await stat(a.path)).size).and.to.be.lessThan(2 * 1024 * 1024);
    expect(a.parameters).to.equal(countParameters(SHAPES.tiny));
    const info = await validateGguf(a.path);
    expect(info.tensors.map((t) => [t.name, t.dims])).to.deep.equal(planTensors(SHAPES.tiny).map((t) => [t.name, t.dims]));
    expect(info.metadata['llama.attention.head_count_kv']).to.equal(2);
    expect(info.metadata['tokenizer.ggml.eos_token_id']).to.equal(4);
  });

  it('ensureModel generates once, survives a race and leaves no temp files', async () => {
    const sub = join(dir, 'ensure');
    const p = join(sub, 'demo.gguf');
    const [x, y] = await Promise.all([ensureModel('tiny', p), ensureModel('tiny', p)]);
    expect(x.created || y.created).to.equal(true);
    expect(await readdir(sub)).to.deep.equal(['demo.gguf']);
    expect((await ensureModel('tiny', p)).created).to.equal(false);
    await validateGguf(p);
  });

  it('make-model CLI exits 2 with usage on bad arguments', () => {
    for (const args of [['--shape', 'huge', '--out', join(dir, 'x.gguf')], ['--shape', 'tiny'], ['--bogus'], ['--shape', 'tiny', '--out', 'x', '--seed', '-1']]) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/make-model.ts', ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr).to.match(/usage: make-model --shape tiny\|tiny-embed\|bench --out FILE/);
    }
  });
});

describe('gguf tiny model in node-llama-cpp', () => {
  let llama: Llama;
  let model: LlamaModel;
  let context: LlamaContext;
  before(async () => {
    const { path } = await generateModel({ shape: 'tiny', seed: 0, outPath: join(dir, 'tiny.gguf') });
    llama = await getLlama(LLAMA_OPTIONS);
    model = await llama.loadModel({ modelPath: path });
    context = await model.createContext({ contextSize: 256, threads: 1 });
  });
  after(async () => {
    await context?.dispose();
    await model?.dispose();
    await llama?.dispose();
  });

  it('round-trips ASCII, accents, CJK and emoji through tokenize/detokenize', () => {
    for (const text of ['Hello world, this is a test.', 'Café crème brûlée, naïve Ångström', '日本語のテキストと中文', 'emoji 🎉👍🏽 👨‍👩‍👧 ok', ' two  spaces\nand\ttabs ']) {
      const tokens = model.tokenize(text);
      expect(model.detokenize(tokens), text).to.equal(text);
    }
    // Merges work: a common word is a few pieces, not one token per character.
    const words = 'hello there cat';
    expect(model.tokenize(words).length).to.be.lessThan(words.length * 0.6);
  });

  it('has the written BOS/EOS ids and the special tokens', () => {
    expect(model.tokens.bos).to.equal(1);
    expect(model.tokens.eos).to.equal(4);
    expect(model.tokenize('<|im_start|>user', true)[0]).to.equal(3);
    expect(model.fileInfo.metadata.general.architecture).to.equal('llama');
  });

  it('renders the ChatML chat template with @huggingface/jinja', () => {
    const t = model.fileInfo.metadata.tokenizer?.chat_template;
    expect(t).to.be.a('string');
    const rendered = new Template(t!).render({ messages: [{ role: 'user', content: 'Hi' }], add_generation_prompt: true });
    expect(rendered).to.equal('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('generates 16 greedy tokens, the same twice', async () => {
    const prompt = [model.tokens.bos!, ...model.tokenize('Hello world')];
    const run = async () => {
      const seq = context.getSequence();
      const out: Token[] = [];
      try {
        for await (const tok of seq.evaluate(prompt)) {
          out.push(tok);
          if (out.length === 16) break;
        }
      } finally {
        seq.dispose();
      }
      return out;
    };
    const first = await run();
    expect(first).to.have.length(16);
    expect(first.every((t) => t >= 0 && t < SHAPES.tiny.nVocab)).to.equal(true);
    expect(await run()).to.deep.equal(first);
  });
});

describe('gguf bench model', () => {
  // Generation measured at ~5 s on the 2-core box (130 MB written); allow headroom for load.
  it('claims ~100M parameters and tokenizes a 2k-character text with vocabOnly', async function () {
    this.timeout(180_000);
    // Nothing below depends on how long generation took: check the model however slow the machine.
    const m = await generateModel({ shape: 'bench', seed: 0, outPath: join(dir, 'bench.gguf') });
    const info = await validateGguf(m.path);
    const params = info.tensors.reduce((n, t) => n + t.dims.reduce((x, y) => x * y, 1), 0);
    expect(params).to.equal(m.parameters);
    expect(params).to.be.within(90e6, 140e6);
    expect(info.tensors.some((t) => t.name === 'output.weight')).to.equal(false);
    expect((info.metadata['tokenizer.ggml.tokens'] as string[]).length).to.be.at.least(32000);
    const llama = await getLlama(LLAMA_OPTIONS);
    try {
      const model = await llama.loadModel({ modelPath: m.path, vocabOnly: true });
      const text = 'The quick brown fox jumps over the lazy dog. Ünïcödé 日本語 🎉 '.repeat(40);
      const text2k = [...text].slice(0, 2000).join(''); // cut by code point, never inside an emoji
      const tokens = model.tokenize(text2k);
      expect(tokens.length).to.be.within(200, 2000);
      expect(model.detokenize(tokens)).to.equal(text2k);
      await model.dispose();
    } finally {
      await llama.dispose();
    }
  });
});
