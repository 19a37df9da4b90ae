/**
 * Seeded GGUF mutations for the fuzz test. A trusted file (our generator's) is split into raw
 * parts: each metadata entry keeps its type codes and its encoded value bytes, each tensor info
 * its fields, and the data section its bytes. A mutation edits those parts (a hyperparameter's
 * value, a type code relabelled over the same bytes, an array count, a tensor's dims, type or
 * offset, a deleted or duplicated entry) or overwrites header bytes at random, and `serialize`
 * writes the result back, so every case is a file of the kind an attacker could hand us.
 */
import { GgufValueType as V, GGUF_SCALAR_SIZE } from '../../src/runtime/gguf/format.js';
import { mulberry32 } from '../../bench/server.js';

export interface RawKv {
  key: string;
  type: number;
  /** Element type of an array. */
  elem?: number;
  /** Element count of an array (written as is, whatever `payload` holds). */
  count?: bigint;
  /** The encoded value (for an array: its elements, after type and count). */
  payload: Buffer;
}

export interface RawTensor {
  name: string;
  dims: bigint[];
  type: number;
  offset: bigint;
}

export interface RawGguf {
  version: number;
  kvs: RawKv[];
  tensors: RawTensor[];
  alignment: number;
  data: Buffer;
}

/** Parses a trusted GGUF (no bounds checks beyond Buffer's). */
export function splitGguf(file: Buffer): RawGguf {
  let p = 8;
  const u32 = () => ((p += 4), file.readUInt32LE(p - 4));
  const u64 = () => ((p += 8), file.readBigUInt64LE(p - 8));
  const str = () => {
    const n = Number(u64());
    p += n;
    return file.subarray(p - n, p).toString('utf8');
  };
  const skipValue = (type: number): void => {
    // Read the length first: `p += Number(u64())` would add to p's value from before u64 moved it.
    const n = type === V.STRING ? Number(u64()) : GGUF_SCALAR_SIZE[type]!;
    p += n;
  };
  const version = file.readUInt32LE(4);
  const nTensors = Number(u64());
  const nKv = Number(u64());
  const kvs: RawKv[] = [];
  let alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    if (type === V.ARRAY) {
      const elem = u32();
      const count = u64();
      const start = p;
      for (let j = 0n; j < count; j++) skipValue(elem);
      kvs.push({ key, type, elem, count, payload: file.subarray(start, p) });
    } else {
      const start = p;
      skipValue(type);
      kvs.push({ key, type, payload: file.subarray(start, p) });
      if (key === 'general.alignment') alignment = file.readUInt32LE(start);
    }
  }
  const tensors: RawTensor[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nDims = u32();
    const dims: bigint[] = [];
    for (let d = 0; d < nDims; d++) dims.push(u64());
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const dataStart = Math.ceil(p / alignment) * alignment;
  return { version, kvs, tensors, alignment, data: file.subarray(dataStart) };
}

export function serialize(g: RawGguf): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    parts.push(b);
  };
  const u64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v));
    parts.push(b);
  };
  const str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    u64(BigInt(b.length));
    parts.push(b);
  };
  u32(0x46554747);
  u32(g.version);
  u64(BigInt(g.tensors.length));
  u64(BigInt(g.kvs.length));
  for (const kv of g.kvs) {
    str(kv.key);
    u32(kv.type);
    if (kv.type === V.ARRAY || kv.elem !== undefined) {
      if (kv.type === V.ARRAY) {
        u32(kv.elem ?? V.UINT8);
        u64(kv.count ?? 0n);
      }
    }
    parts.push(kv.payload);
  }
  for (const t of g.tensors) {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(t.type);
    u64(t.offset);
  }
  const head = Buffer.concat(parts);
  const pad = Math.ceil(head.length / g.alignment) * g.alignment - head.length;
  return Buffer.concat([head, Buffer.alloc(pad), g.data]);
}

/** mulberry32 (bench/server.ts), so a seed names one exact sequence of cases. */
export const rng = mulberry32;

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const u32Bytes = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};
const f32Bytes = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return b;
};
const strBytes = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b]);
};

/** Values at and around every limit llama.cpp has, plus the usual integer edges. */
const EDGE_U32 = [0, 1, 2, 3, 5, 7, 31, 33, 63, 64, 65, 127, 128, 255, 511, 512, 513, 1024, 1025, 4096, 65535, 100000, 2 ** 31, 2 ** 32 - 1];
const HPARAM_U32 = [
  'llama.block_count',
  'llama.embedding_length',
  'llama.feed_forward_length',
  'llama.attention.head_count',
  'llama.attention.head_count_kv',
  'llama.context_length',
  'llama.rope.dimension_count',
  'llama.attention.key_length',
  'llama.attention.value_length',
  'llama.expert_count',
  'llama.expert_used_count',
  'llama.expert_group_count',
  'llama.nextn_predict_layers',
  'llama.vocab_size',
  'tokenizer.ggml.bos_token_id',
  'tokenizer.ggml.eos_token_id',
  'tokenizer.ggml.unknown_token_id',
  'tokenizer.ggml.padding_token_id',
];
const HPARAM_F32 = ['llama.attention.layer_norm_rms_epsilon', 'llama.rope.freq_base', 'llama.rope.scaling.factor'];
const ALL_TYPES = [V.UINT8, V.INT8, V.UINT16, V.INT16, V.UINT32, V.INT32, V.FLOAT32, V.BOOL, V.STRING, V.ARRAY, V.UINT64, V.INT64, V.FLOAT64, 13, 0xffffffff];
const GGML_TYPE_CODES = [0, 1, 2, 8, 9, 12, 15, 24, 26, 27, 28, 30, 31, 39, 1000];

function setKv(g: RawGguf, key: string, kv: Omit<RawKv, 'key'>): void {
  const i = g.kvs.findIndex((k) => k.key === key);
  if (i >= 0) g.kvs[i] = { key, ...kv };
  else g.kvs.push({ key, ...kv });
}

/** The mutation kinds; each edits `g` in place and returns a one-line description. */
const MUTATIONS: ((g: RawGguf, r: () => number) => string)[] = [
  // A hyperparameter or token id set to an edge value (added when absent).
  (g, r) => {
    const key = pick(r, HPARAM_U32);
    const v = pick(r, EDGE_U32);
    setKv(g, key, { type: V.UINT32, payload: u32Bytes(v) });
    return `${key} = ${v}`;
  },
  (g, r) => {
    const key = pick(r, HPARAM_F32);
    const v = pick(r, [0, -1, NaN, Infinity, -Infinity, 1e-30, 1e30, 3.4e38]);
    setKv(g, key, { type: V.FLOAT32, payload: f32Bytes(v) });
    return `${key} = ${v}`;
  },
  (g, r) => {
    const v = pick(r, ['none', 'linear', 'yarn', 'longrope', 'bogus', '']);
    setKv(g, 'llama.rope.scaling.type', { type: V.STRING, payload: strBytes(v) });
    return `llama.rope.scaling.type = "${v}"`;
  },
  // A per-layer array of head counts / ffn widths with a random length and values.
  (g, r) => {
    const key = pick(r, ['llama.attention.head_count', 'llama.attention.head_count_kv', 'llama.feed_forward_length', 'llama.expert_used_count']);
    const n = pick(r, [0, 1, 2, 3, 513]);
    const vals = Array.from({ length: n }, () => pick(r, [0, 1, 2, 4, 128]));
    setKv(g, key, { type: V.ARRAY, elem: pick(r, [V.UINT32, V.INT32, V.FLOAT32, V.BOOL]), count: BigInt(n), payload: Buffer.concat(vals.map(u32Bytes)) });
    return `${key} = array[${n}]`;
  },
  // A type code relabelled over the same bytes (scalar or array element).
  (g, r) => {
    const kv = pick(r, g.kvs);
    const t = pick(r, ALL_TYPES);
    if (kv.type === V.ARRAY && r() < 0.7) {
      const before = kv.elem;
      kv.elem = t;
      return `${kv.key} element type ${before} -> ${t}`;
    }
    const before = kv.type;
    kv.type = t;
    if (t === V.ARRAY) {
      kv.elem = V.UINT8;
      kv.count = 0n;
    }
    return `${kv.key} type ${before} -> ${t}`;
  },
  // An array's count changed without changing its bytes.
  (g, r) => {
    const arrays = g.kvs.filter((k) => k.type === V.ARRAY);
    if (arrays.length === 0) return 'no array to edit';
    const kv = pick(r, arrays);
    const c = kv.count ?? 0n;
    kv.count = pick(r, [0n, 1n, c - 1n, c + 1n, c * 2n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n]);
    return `${kv.key} count ${c} -> ${kv.count}`;
  },
  // A vocabulary entry duplicated or emptied.
  (g, r) => {
    const kv = g.kvs.find((k) => k.key === 'tokenizer.ggml.tokens' && k.type === V.ARRAY && k.elem === V.STRING);
    if (!kv) return 'no vocabulary to edit';
    const tokens: string[] = [];
    let p = 0;
    // Walk the bytes, not the count: an earlier mutation may have changed the count.
    while (p + 8 <= kv.payload.length) {
      const n = Number(kv.payload.readBigUInt64LE(p));
      if (p + 8 + n > kv.payload.length) break;
      tokens.push(kv.payload.subarray(p + 8, p + 8 + n).toString('utf8'));
      p += 8 + n;
    }
    const i = Math.floor(r() * tokens.length);
    const j = Math.floor(r() * tokens.length);
    const how = pick(r, ['dup', 'empty', 'empty-name']);
    if (how === 'dup') tokens[i] = tokens[j]!;
    else if (how === 'empty') tokens[i] = '';
    else tokens[i] = `[EMPTY_${j}]`;
    kv.payload = Buffer.concat(tokens.map(strBytes));
    return `tokenizer.ggml.tokens[${i}] ${how} (${j})`;
  },
  // A metadata entry deleted or duplicated.
  (g, r) => {
    const i = Math.floor(r() * g.kvs.length);
    if (r() < 0.7) return `deleted ${g.kvs.splice(i, 1)[0]!.key}`;
    g.kvs.push({ ...g.kvs[i]! });
    return `duplicated ${g.kvs[i]!.key}`;
  },
  // A tensor's dims, type, offset or name changed, or the tensor dropped or duplicated.
  (g, r) => {
    const t = pick(r, g.tensors);
    switch (pick(r, ['dims', 'ndims', 'type', 'offset', 'name', 'drop', 'dup'])) {
      case 'dims': {
        const d = Math.floor(r() * t.dims.length);
        const before = t.dims[d]!;
        t.dims[d] = pick(r, [0n, 1n, before / 2n, before * 2n, before + 32n, 2n ** 32n, 2n ** 62n, 2n ** 64n - 1n]);
        return `tensor ${t.name} ne[${d}] ${before} -> ${t.dims[d]}`;
      }
      case 'ndims':
        t.dims = r() < 0.5 ? [...t.dims, 1n] : t.dims.slice(0, Math.max(0, t.dims.length - 1));
        return `tensor ${t.name} n_dims -> ${t.dims.length}`;
      case 'type': {
        const before = t.type;
        t.type = pick(r, GGML_TYPE_CODES);
        return `tensor ${t.name} type ${before} -> ${t.type}`;
      }
      case 'offset': {
        const before = t.offset;
        t.offset = pick(r, [0n, 32n, before + 32n, before + 1n, BigInt(g.data.length), 2n ** 63n]);
        return `tensor ${t.name} offset ${before} -> ${t.offset}`;
      }
      case 'name': {
        const before = t.name;
        t.name = pick(r, ['blk.7.attn_q.weight', 'x'.repeat(70), '', 'output.weight', 'token_embd.weight', 'blk.0.ffn_gate_inp.weight']);
        return `tensor ${before} renamed ${t.name.slice(0, 20)}`;
      }
      case 'drop':
        g.tensors.splice(g.tensors.indexOf(t), 1);
        return `dropped tensor ${t.name}`;
      default:
        g.tensors.push({ ...t, dims: [...t.dims] });
        return `duplicated tensor ${t.name}`;
    }
  },
];

/**
 * Case `index` of the stream for `seed`: one to three mutations of `base` (case 0 of every seed is
 * the unmutated file, the control that must load). Byte-level overwrites of the header come in
 * as a final step in a fifth of the cases.
 */
export function mutateCase(base: Buffer, seed: number, index: number): { bytes: Buffer; what: string[] } {
  if (index === 0) return { bytes: base, what: ['unmutated'] };
  const r = rng((Math.imul(seed, 0x85ebca6b) + Math.imul(index, 0x9e3779b1)) >>> 0);
  const g = splitGguf(base);
  const what: string[] = [];
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) what.push(pick(r, MUTATIONS)(g, r));
  let bytes = serialize(g);
  if (r() < 0.2) {
    bytes = Buffer.from(bytes);
    const headerEnd = bytes.length - g.data.length;
    const at = 8 + Math.floor(r() * (headerEnd - 16));
    const v = pick(r, [0n, 1n, 0xffn, 0xffffffffn, 2n ** 63n, 2n ** 64n - 1n]);
    bytes.writeBigUInt64LE(v, at);
    what.push(`u64 ${v} written at byte ${at}`);
  }
  return { bytes, what };
}

/** Adapter-specific mutations: the keys llama.cpp reads with type-asserting getters, names and shapes of the halves. */
const ADAPTER_MUTATIONS: ((g: RawGguf, r: () => number) => string)[] = [
  (g, r) => {
    const key = pick(r, ['general.type', 'adapter.type', 'general.architecture']);
    if (r() < 0.5) {
      const v = pick(r, ['adapter', 'lora', 'llama', 'model', '', 'qwen2', 'x'.repeat(300)]);
      setKv(g, key, { type: V.STRING, payload: strBytes(v) });
      return `${key} = "${v.slice(0, 20)}"`;
    }
    const t = pick(r, [V.UINT32, V.FLOAT32, V.BOOL, V.UINT64]);
    setKv(g, key, { type: t, payload: Buffer.alloc(GGUF_SCALAR_SIZE[t]!) });
    return `${key} stored as type ${t}`;
  },
  (g, r) => {
    if (r() < 0.5) {
      const v = pick(r, [0, -1, NaN, Infinity, 1e30, 16, 0.5]);
      setKv(g, 'adapter.lora.alpha', { type: V.FLOAT32, payload: f32Bytes(v) });
      return `adapter.lora.alpha = ${v}`;
    }
    const t = pick(r, [V.UINT32, V.INT32, V.FLOAT64, V.STRING]);
    setKv(g, 'adapter.lora.alpha', t === V.STRING ? { type: t, payload: strBytes('16') } : { type: t, payload: Buffer.alloc(GGUF_SCALAR_SIZE[t]!) });
    return `adapter.lora.alpha stored as type ${t}`;
  },
  (g, r) => {
    const elem = pick(r, [V.UINT32, V.INT32, V.FLOAT32, V.STRING]);
    const n = pick(r, [0, 1, 3]);
    setKv(g, 'adapter.alora_invocation_tokens', { type: V.ARRAY, elem, count: BigInt(n), payload: elem === V.STRING ? Buffer.concat(Array.from({ length: n }, () => strBytes('a'))) : Buffer.alloc(4 * n) });
    return `adapter.alora_invocation_tokens = array of ${elem} [${n}]`;
  },
  // A half renamed onto another base tensor (shapes then disagree), or onto a name the base lacks.
  (g, r) => {
    const t = pick(r, g.tensors);
    const before = t.name;
    const half = before.endsWith('.lora_a') ? 'lora_a' : 'lora_b';
    t.name = `${pick(r, ['blk.0.attn_q.weight', 'blk.1.ffn_down.weight', 'output.weight', 'token_embd.weight', 'blk.0.attn_k.weight', 'blk.9.attn_q.weight', 'blk.0.attn_norm.weight'])}.${pick(r, [half, half, 'lora_c'])}`;
    return `tensor ${before} renamed ${t.name}`;
  },
  // The rank of one half changed (ne1 of lora_a or ne0 of lora_b), with or without its partner.
  (g, r) => {
    const t = pick(r, g.tensors);
    const d = t.name.endsWith('.lora_a') ? 1 : 0;
    const before = t.dims[d]!;
    t.dims[d] = pick(r, [0n, 1n, 4n, 16n, 2048n, 2n ** 32n]);
    if (r() < 0.5) {
      const partner = g.tensors.find((x) => x.name === t.name.replace(/lora_[ab]$/, d === 1 ? 'lora_b' : 'lora_a'));
      if (partner) partner.dims[d === 1 ? 0 : 1] = t.dims[d]!;
    }
    return `tensor ${t.name} rank ${before} -> ${t.dims[d]}`;
  },
];

/**
 * Case `index` of the adapter stream for `seed`: one to three mutations of the adapter `base`,
 * mostly adapter-specific, some generic (types, counts, offsets, dims); case 0 is unmutated.
 */
export function mutateAdapterCase(base: Buffer, seed: number, index: number): { bytes: Buffer; what: string[] } {
  if (index === 0) return { bytes: base, what: ['unmutated'] };
  const r = rng((Math.imul(seed ^ 0x5bd1e995, 0x85ebca6b) + Math.imul(index, 0x9e3779b1)) >>> 0);
  const g = splitGguf(base);
  const what: string[] = [];
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) what.push(pick(r, r() < 0.6 ? ADAPTER_MUTATIONS : MUTATIONS)(g, r));
  return { bytes: serialize(g), what };
}
