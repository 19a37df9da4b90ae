/**
 * Bounds-checked GGUF reader for UNTRUSTED files. llama.cpp's own GGUF parser has had integer
 * overflow CVEs (huge string/array lengths, tensor sizes that wrap), so every model path is checked
 * here, in memory-safe TypeScript with BigInt arithmetic for all u64 fields, before any native code
 * sees it. Every length is checked against the bytes left in the file before it is used, counts have
 * hard caps so a small file cannot make us allocate gigabytes, and tensor data ranges must be
 * aligned, inside the file and non-overlapping. Failures throw `GgufFormatError` with a `reason`
 * code (match on that, not on the message) and a message naming the field and file offset.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { checkModelRules } from './model-rules.js';
import { GGML_MAX_DIMS, GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_SCALAR_SIZE, GgufValueType } from './format.js';

/** Caps far above any real model (llama 405B has ~1.1k tensors, vocabularies ~256k tokens). */
export const GGUF_LIMITS = {
  maxTensors: 65_536,
  maxKv: 65_536,
  maxArrayLength: 16_777_216,
  maxStringBytes: 16 * 1024 * 1024,
  /** llama.cpp's GGML_MAX_NAME: a tensor name must be shorter than this. */
  maxTensorName: 64,
} as const;

import { GgufFormatError, type GgufInfo, type GgufMetaValue, type GgufProblem, type GgufScalar, type GgufTensorInfo } from './gguf-info.js';

export { GgufFormatError };
export type { GgufInfo, GgufMetaValue, GgufProblem, GgufScalar, GgufTensorInfo } from './gguf-info.js';

/** Sequential reader over a file handle with a refillable window; every read is range-checked. */
class Cursor {
  pos = 0;
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly path: string,
  ) {}

  fail(reason: GgufProblem, what: string, at = this.pos): never {
    throw new GgufFormatError(reason, `invalid GGUF ${this.path}: ${what} (at byte ${at})`);
  }

  remaining(): number {
    return this.size - this.pos;
  }

  private async need(n: number, what: string): Promise<number> {
    if (n > this.remaining()) this.fail('truncated', `file ends inside ${what}: needs ${n} bytes, ${this.remaining()} left`);
    const end = this.pos + n;
    if (this.pos < this.bufStart || end > this.bufStart + this.buf.length) {
      const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await this.fh.read(buf, 0, len, this.pos);
      if (bytesRead < n) this.fail('truncated', `short read inside ${what}`);
      this.buf = buf.subarray(0, bytesRead);
      this.bufStart = this.pos;
    }
    const at = this.pos - this.bufStart;
    this.pos = end;
    return at;
  }

  // Await `need` before touching `this.buf`: it may swap the buffer, and `this.buf.read(await …)`
  // would evaluate the old buffer first.
  async u32(what: string): Promise<number> {
    const o = await this.need(4, what);
    return this.buf.readUInt32LE(o);
  }
  async u64(what: string): Promise<bigint> {
    const o = await this.need(8, what);
    return this.buf.readBigUInt64LE(o);
  }
  /**
   * A u64 count of items, each at least `minBytes` long: it must be at most `cap` (a sanity limit
   * against huge allocations) and fit in the bytes left after it (else the file is truncated).
   */
  async count(what: string, cap: number, minBytes: number): Promise<number> {
    const at = this.pos;
    const v = await this.u64(what);
    if (v > BigInt(cap)) this.fail('limit_exceeded', `${what} ${v} exceeds the limit ${cap}`, at);
    const n = Number(v);
    if (n * minBytes > this.remaining()) this.fail('truncated', `${what} ${n} needs at least ${n * minBytes} bytes, only ${this.remaining()} left`, at);
    return n;
  }
  async string(what: string): Promise<string> {
    const at = this.pos;
    const len = await this.count(`${what} length`, GGUF_LIMITS.maxStringBytes, 1);
    const off = await this.need(len, what);
    return this.decodeUtf8(off, len, what, at);
  }

  /**
   * Synchronous fast path for string arrays (a vocabulary is 10^5 strings and an await per field
   * dominated parse time): decodes the next string if it lies wholly inside the buffered window,
   * else returns undefined without moving, and the caller takes the checked async path.
   */
  stringIfBuffered(what: () => string): string | undefined {
    const off = this.pos - this.bufStart;
    if (off < 0 || off + 8 > this.buf.length) return undefined;
    const len = this.buf.readBigUInt64LE(off);
    if (len > BigInt(GGUF_LIMITS.maxStringBytes) || off + 8 + Number(len) > this.buf.length) return undefined;
    const at = this.pos;
    this.pos += 8 + Number(len);
    return this.decodeUtf8(off + 8, Number(len), what(), at);
  }

  private decodeUtf8(off: number, len: number, what: string, at: number): string {
    try {
      return this.utf8.decode(this.buf.subarray(off, off + len));
    } catch {
      return this.fail('bad_value', `${what} is not valid UTF-8`, at);
    }
  }

  async scalar(type: number, what: string): Promise<GgufScalar> {
    if (type === GgufValueType.STRING) return this.string(what);
    const size = GGUF_SCALAR_SIZE[type];
    if (size === undefined) return this.fail('bad_value', `${what} has unknown value type ${type}`);
    const o = await this.need(size, what);
    return this.decodeScalar(type, o, what);
  }

  /** An array of `n` values of type `elemType`, already checked to fit in the file. */
  async array(elemType: number, n: number, key: string): Promise<GgufScalar[]> {
    const arr: GgufScalar[] = new Array(n);
    if (elemType === GgufValueType.STRING) {
      for (let j = 0; j < n; j++) arr[j] = this.stringIfBuffered(() => `"${key}"[${j}]`) ?? (await this.string(`"${key}"[${j}]`));
      return arr;
    }
    // Fixed-size elements: one bounds check and one read for the whole array.
    const size = GGUF_SCALAR_SIZE[elemType]!;
    const o = await this.need(n * size, `"${key}"`);
    for (let j = 0; j < n; j++) arr[j] = this.decodeScalar(elemType, o + j * size, `"${key}"[${j}]`);
    return arr;
  }

  /** Decodes a fixed-size value at window offset `o` (already range-checked by `need`). */
  private decodeScalar(type: number, o: number, what: string): GgufScalar {
    const b = this.buf;
    switch (type) {
      case GgufValueType.UINT8: return b.readUInt8(o);
      case GgufValueType.INT8: return b.readInt8(o);
      case GgufValueType.UINT16: return b.readUInt16LE(o);
      case GgufValueType.INT16: return b.readInt16LE(o);
      case GgufValueType.UINT32: return b.readUInt32LE(o);
      case GgufValueType.INT32: return b.readInt32LE(o);
      case GgufValueType.FLOAT32: return b.readFloatLE(o);
      case GgufValueType.UINT64: return b.readBigUInt64LE(o);
      case GgufValueType.INT64: return b.readBigInt64LE(o);
      case GgufValueType.FLOAT64: return b.readDoubleLE(o);
      case GgufValueType.BOOL: {
        const v = b.readUInt8(o);
        if (v > 1) this.fail('bad_value', `${what} bool is ${v}, not 0 or 1`, this.bufStart + o);
        return v === 1;
      }
      default: return this.fail('bad_value', `${what} has unknown value type ${type}`, this.bufStart + o);
    }
  }
}

/** Reads and validates the header, metadata and tensor infos of a GGUF v2/v3 file. */
export async function readGgufHeader(path: string): Promise<GgufInfo> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    return await parse(new Cursor(fh, size, path));
  } finally {
    await fh.close();
  }
}

async function parse(c: Cursor): Promise<GgufInfo> {
  if (c.size < 4) c.fail('truncated', `file is ${c.size} bytes, too short for a GGUF magic`);
  const magic = await c.u32('magic');
  if (magic !== GGUF_MAGIC) c.fail('bad_magic', `magic is 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF"`, 0);
  const version = await c.u32('version');
  if (version !== 2 && version !== 3) {
    const hint = version > 0xffff ? ' (big-endian files are not supported)' : '';
    c.fail('unsupported_version', `version ${version} is not 2 or 3${hint}`, 4);
  }
  // A tensor info takes >= 33 bytes (8+1 name, 4 n_dims, 8 ne, 4 type, 8 offset) and a kv >= 14
  // (8+1 key, 4 type, 1 value), so the file size alone rules out most absurd counts cheaply.
  const nTensors = await c.count('tensor_count', GGUF_LIMITS.maxTensors, 33);
  const nKv = await c.count('kv_count', GGUF_LIMITS.maxKv, 14);

  const metadata: Record<string, GgufMetaValue> = Object.create(null);
  const metadataTypes: Record<string, number> = Object.create(null);
  const arrayTypes: Record<string, number> = Object.create(null);
  for (let i = 0; i < nKv; i++) {
    const at = c.pos;
    const key = await c.string(`key #${i}`);
    if (key.length === 0) c.fail('bad_value', `key #${i} is empty`, at);
    if (key in metadata) c.fail('duplicate', `duplicate key "${key}"`, at);
    const type = await c.u32(`type of "${key}"`);
    metadataTypes[key] = type;
    if (type === GgufValueType.ARRAY) {
      const elemType = await c.u32(`element type of "${key}"`);
      if (elemType === GgufValueType.ARRAY) c.fail('bad_value', `"${key}" is a nested array`);
      const minSize = elemType === GgufValueType.STRING ? 8 : GGUF_SCALAR_SIZE[elemType];
      if (minSize === undefined) c.fail('bad_value', `"${key}" has unknown element type ${elemType}`);
      const n = await c.count(`length of "${key}"`, GGUF_LIMITS.maxArrayLength, minSize);
      arrayTypes[key] = elemType;
      metadata[key] = await c.array(elemType, n, key);
    } else {
      metadata[key] = await c.scalar(type, `"${key}"`);
    }
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if ('general.alignment' in metadata) {
    const a = metadata['general.alignment'];
    if (metadataTypes['general.alignment'] !== GgufValueType.UINT32 || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) {
      c.fail('bad_value', `general.alignment must be a non-zero u32 power of two, got ${String(a)}`);
    }
    alignment = a;
  }

  const raw: { name: string; dims: number[]; type: number; offset: bigint; bytes: bigint; at: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const at = c.pos;
    const name = await c.string(`tensor #${i} name`);
    if (Buffer.byteLength(name) >= GGUF_LIMITS.maxTensorName) c.fail('bad_tensor', `tensor name "${name.slice(0, 80)}" is ${Buffer.byteLength(name)} bytes, max ${GGUF_LIMITS.maxTensorName - 1}`, at);
    if (names.has(name)) c.fail('duplicate', `duplicate tensor "${name}"`, at);
    names.add(name);
    const nDims = await c.u32(`tensor "${name}" n_dims`);
    if (nDims < 1 || nDims > GGML_MAX_DIMS) c.fail('bad_tensor', `tensor "${name}" has ${nDims} dims, expected 1..${GGML_MAX_DIMS}`);
    const dims: bigint[] = [];
    for (let d = 0; d < nDims; d++) {
      const ne = await c.u64(`tensor "${name}" ne[${d}]`);
      if (ne < 1n || ne > BigInt(Number.MAX_SAFE_INTEGER)) c.fail('bad_tensor', `tensor "${name}" ne[${d}] = ${ne} is out of range`);
      dims.push(ne);
    }
    const type = await c.u32(`tensor "${name}" type`);
    const traits = GGML_TYPES[type];
    if (traits === undefined) c.fail('bad_tensor', `tensor "${name}" has unknown ggml type ${type}`);
    if (dims[0]! % BigInt(traits.blockSize) !== 0n) c.fail('bad_tensor', `tensor "${name}" ne[0] = ${dims[0]} is not a multiple of the ${traits.name} block size ${traits.blockSize}`);
    const offset = await c.u64(`tensor "${name}" offset`);
    // BigInt math: a product of four u64 dims cannot wrap here the way size_t did in C.
    let bytes = (dims[0]! / BigInt(traits.blockSize)) * BigInt(traits.typeSize);
    for (let d = 1; d < dims.length; d++) bytes *= dims[d]!;
    raw.push({ name, dims: dims.map(Number), type, offset, bytes, at });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  if (nTensors > 0 && dataOffset > c.size) c.fail('truncated', `tensor data would start at ${dataOffset}, past the end of the ${c.size}-byte file`);
  const tensors: GgufTensorInfo[] = [];
  for (const t of raw) {
    const name = t.name;
    if (t.offset % BigInt(alignment) !== 0n) c.fail('misaligned', `tensor "${name}" offset ${t.offset} is not a multiple of the alignment ${alignment}`, t.at);
    const end = BigInt(dataOffset) + t.offset + t.bytes;
    if (end > BigInt(c.size)) c.fail('out_of_range', `tensor "${name}" data [${BigInt(dataOffset) + t.offset}, ${end}) runs past the end of the ${c.size}-byte file`, t.at);
    tensors.push({
      name,
      dims: t.dims,
      type: t.type,
      typeName: GGML_TYPES[t.type]!.name,
      offset: Number(t.offset),
      absoluteOffset: dataOffset + Number(t.offset),
      byteLength: Number(t.bytes),
    });
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const cur = byOffset[i]!;
    if (cur.offset < prev.offset + prev.byteLength) c.fail('overlap', `tensor "${cur.name}" data overlaps tensor "${prev.name}"`, cur.absoluteOffset);
  }
  return { version, alignment, metadata, metadataTypes, arrayTypes, tensors, dataOffset, fileSize: c.size };
}

/**
 * Full check before a model path reaches llama.cpp: the structural checks of `readGgufHeader`
 * plus what llama.cpp asserts on while loading (model-rules.ts: hyperparameter limits, key types,
 * tensor shapes, vocabulary). Returns the parsed header.
 */
export async function validateGguf(path: string): Promise<GgufInfo> {
  const info = await readGgufHeader(path);
  checkModelRules(info, path);
  return info;
}
