/**
 * Generates a random-weight llama-architecture GGUF that real llama.cpp loads and runs: the
 * metadata llama.cpp's llama loader reads, an SPM vocabulary with byte fallback, a ChatML template
 * and seeded random weights. Output depends only on (shape, seed): no timestamps, fixed key order,
 * and one PRNG stream per tensor keyed by its name, so the same seed gives a byte-identical file.
 */
import { mkdir, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import { GgmlType } from './format.js';
import { mulberry32U32, nameSeed } from './prng.js';
import { quantizeQ8_0, toF16 } from './quant.js';
import { SHAPES, countParameters, planTensors, type ModelShape, type ShapeName, type TensorPlan } from './shapes.js';
import { buildVocab } from './vocab.js';
import { gv, writeGguf, type GgufMetadata, type GgufTensorSource } from './writer.js';

export const CHATML_TEMPLATE =
  "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}" +
  '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

export interface GenerateOptions {
  readonly shape: ShapeName;
  /** u32 seed for the weights. Defaults to `0`. */
  readonly seed?: number;
  readonly outPath: string;
}

export interface GeneratedModel {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly parameters: number;
}

/** Values per generated chunk: a multiple of 32 (whole Q8_0 blocks), ~256 KiB of floats. */
const CHUNK = 65_536;

// Sum of the four bytes of a u32 is Irwin-Hall-like: mean 510, std ~147.8; close enough to normal.
const BYTE_SUM_MEAN = 510;
const BYTE_SUM_STD = Math.sqrt((4 * (256 * 256 - 1)) / 12);

function* tensorData(plan: TensorPlan, seed: number, std: number): Generator<Uint8Array> {
  const total = plan.dims.reduce((a, b) => a * b, 1);
  const next = mulberry32U32(nameSeed(seed, plan.name));
  const scale = std / BYTE_SUM_STD;
  const buf = new Float32Array(Math.min(CHUNK, total));
  for (let done = 0; done < total; done += buf.length) {
    const n = Math.min(buf.length, total - done);
    const chunk = n === buf.length ? buf : buf.subarray(0, n);
    if (plan.isNorm) chunk.fill(1);
    else {
      for (let i = 0; i < n; i++) {
        const r = next();
        chunk[i] = ((r & 0xff) + ((r >>> 8) & 0xff) + ((r >>> 16) & 0xff) + (r >>> 24) - BYTE_SUM_MEAN) * scale;
      }
    }
    yield encode(chunk, plan.type);
  }
}

function encode(values: Float32Array, type: number): Uint8Array {
  switch (type) {
    // Copy: the Float32Array scratch buffer is reused for the next chunk.
    case GgmlType.F32: return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case GgmlType.F16: return toF16(values);
    case GgmlType.Q8_0: return quantizeQ8_0(values);
    default: throw new Error(`generator cannot encode ggml type ${type}`);
  }
}

function buildMetadata(s: ModelShape): GgufMetadata {
  const vocab = buildVocab(s.nVocab);
  return [
    ['general.architecture', gv.string('llama')],
    ['general.name', gv.string(`inferflux-${s.name}`)],
    ['general.file_type', gv.u32(s.fileType)],
    ['general.quantization_version', gv.u32(2)],
    ['llama.context_length', gv.u32(s.contextLength)],
    ['llama.embedding_length', gv.u32(s.nEmbd)],
    ['llama.block_count', gv.u32(s.nLayer)],
    ['llama.feed_forward_length', gv.u32(s.nFf)],
    ['llama.attention.head_count', gv.u32(s.nHead)],
    ['llama.attention.head_count_kv', gv.u32(s.nHeadKv)],
    ['llama.rope.dimension_count', gv.u32(s.nEmbd / s.nHead)],
    ['llama.attention.layer_norm_rms_epsilon', gv.f32(s.rmsEps)],
    ['llama.rope.freq_base', gv.f32(s.ropeFreqBase)],
    ['llama.vocab_size', gv.u32(s.nVocab)],
    ...(s.poolingType === undefined ? [] : [['llama.pooling_type', gv.u32(s.poolingType)] as const]),
    ['tokenizer.ggml.model', gv.string('llama')],
    ['tokenizer.ggml.tokens', gv.strings(vocab.tokens)],
    ['tokenizer.ggml.scores', gv.f32s(vocab.scores)],
    ['tokenizer.ggml.token_type', gv.i32s(vocab.types)],
    ['tokenizer.ggml.bos_token_id', gv.u32(vocab.bos)],
    ['tokenizer.ggml.eos_token_id', gv.u32(vocab.eos)],
    ['tokenizer.ggml.unknown_token_id', gv.u32(vocab.unk)],
    ['tokenizer.ggml.add_bos_token', gv.bool(true)],
    ['tokenizer.ggml.add_eos_token', gv.bool(false)],
    ['tokenizer.chat_template', gv.string(CHATML_TEMPLATE)],
  ];
}

/** Writes the `shape` model with weights from `seed` to `outPath` (atomically) and describes it. */
export async function generateModel(opts: GenerateOptions): Promise<GeneratedModel> {
  // F32 chunks are written as the host's bytes; GGUF is little-endian.
  if (endianness() !== 'LE') throw new Error('model generation needs a little-endian host');
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be a u32, got ${seed}`);
  const s: ModelShape = SHAPES[opts.shape];
  if (s === undefined) throw new Error(`unknown model shape ${String(opts.shape)}`);
  const tensors: GgufTensorSource[] = planTensors(s).map((p) => ({
    name: p.name,
    dims: p.dims,
    type: p.type,
    data: () => tensorData(p, seed, s.initStd),
  }));
  await mkdir(dirname(opts.outPath), { recursive: true });
  const { bytes, sha256 } = await writeGguf(opts.outPath, buildMetadata(s), tensors);
  return { path: opts.outPath, sha256, bytes, parameters: countParameters(s) };
}

/**
 * Generates `outPath` only if it does not exist yet (used at start-up for models/demo.gguf). Two
 * processes racing both write private temp files and rename them into place; the files are
 * byte-identical for the same seed, so whichever rename lands last changes nothing.
 */
export async function ensureModel(shape: ShapeName, outPath: string, seed = 0): Promise<{ path: string; created: boolean }> {
  try {
    await stat(outPath);
    return { path: outPath, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await generateModel({ shape, seed, outPath });
  return { path: outPath, created: true };
}
