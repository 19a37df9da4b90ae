/**
 * Streams a GGUF v3 file to disk: header and tensor infos from one in-memory buffer, then each
 * tensor's data pulled lazily from its producer, so a 130 MB model never sits in memory as one
 * buffer. The file is written under a temporary name, fsynced and renamed into place, so a reader
 * (or a racing writer) sees either no file or a complete one, never a half-written model.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgufValueType,
  alignUp,
  ggmlTensorBytes,
  type GgmlType,
} from './format.js';

/** A typed metadata value: JS numbers are ambiguous, so each value says how it is encoded. */
export type GgufValue =
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'u32'; readonly value: number }
  | { readonly type: 'i32'; readonly value: number }
  | { readonly type: 'f32'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'u64'; readonly value: bigint }
  | { readonly type: 'string[]'; readonly value: readonly string[] }
  | { readonly type: 'f32[]'; readonly value: ArrayLike<number> }
  | { readonly type: 'i32[]'; readonly value: ArrayLike<number> };

/** Constructors for `GgufValue`, e.g. `gv.u32(2048)`. */
export const gv = {
  string: (value: string): GgufValue => ({ type: 'string', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  u64: (value: bigint): GgufValue => ({ type: 'u64', value }),
  strings: (value: readonly string[]): GgufValue => ({ type: 'string[]', value }),
  f32s: (value: ArrayLike<number>): GgufValue => ({ type: 'f32[]', value }),
  i32s: (value: ArrayLike<number>): GgufValue => ({ type: 'i32[]', value }),
};

/** Ordered key/value pairs; order is kept so the same input gives byte-identical files. */
export type GgufMetadata = ReadonlyArray<readonly [key: string, value: GgufValue]>;

export interface GgufTensorSource {
  readonly name: string;
  /** ggml order: ne0 (the contiguous dimension) first. */
  readonly dims: readonly number[];
  readonly type: GgmlType;
  /** Yields the tensor's encoded bytes in order; called once, when the writer reaches this tensor. */
  readonly data: () => Iterable<Uint8Array>;
}

export interface WriteGgufResult {
  readonly bytes: number;
  /** SHA-256 of the whole file, hashed while writing so nobody has to read it back. */
  readonly sha256: string;
}

/** Growable little-endian byte buffer for the header. */
class HeaderBuilder {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly utf8 = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }
  string(s: string): void {
    const bytes = this.utf8.encode(s);
    this.u64(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  padTo(alignment: number): void {
    const target = alignUp(this.length, alignment);
    this.reserve(target - this.length);
    this.buf.fill(0, this.length, target);
    this.length = target;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(h: HeaderBuilder, v: GgufValue): void {
  switch (v.type) {
    case 'string':
      h.u32(GgufValueType.STRING);
      return h.string(v.value);
    case 'u32':
      h.u32(GgufValueType.UINT32);
      return h.u32(v.value);
    case 'i32':
      h.u32(GgufValueType.INT32);
      return h.i32(v.value);
    case 'f32':
      h.u32(GgufValueType.FLOAT32);
      return h.f32(v.value);
    case 'bool':
      h.u32(GgufValueType.BOOL);
      return h.u8(v.value ? 1 : 0);
    case 'u64':
      h.u32(GgufValueType.UINT64);
      return h.u64(v.value);
    case 'string[]':
      h.u32(GgufValueType.ARRAY);
      h.u32(GgufValueType.STRING);
      h.u64(v.value.length);
      for (const s of v.value) h.string(s);
      return;
    case 'f32[]':
      h.u32(GgufValueType.ARRAY);
      h.u32(GgufValueType.FLOAT32);
      h.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) h.f32(v.value[i]!);
      return;
    case 'i32[]':
      h.u32(GgufValueType.ARRAY);
      h.u32(GgufValueType.INT32);
      h.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) h.i32(v.value[i]!);
      return;
    default: {
      const never: never = v;
      throw new Error(`unknown GGUF value ${JSON.stringify(never)}`);
    }
  }
}

function alignmentOf(metadata: GgufMetadata): number {
  const entry = metadata.find(([k]) => k === 'general.alignment');
  if (entry === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const v = entry[1];
  if (v.type !== 'u32' || v.value <= 0 || (v.value & (v.value - 1)) !== 0) {
    throw new Error('general.alignment must be a u32 power of two');
  }
  return v.value;
}

/** Writes through a fixed 4 MiB buffer: one syscall per few MiB instead of one per tensor row. */
class FileSink {
  private readonly buf = new Uint8Array(4 << 20);
  private used = 0;
  written = 0;
  readonly hash = createHash('sha256');
  constructor(private readonly fh: import('node:fs/promises').FileHandle) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    this.written += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, this.buf.length - this.used);
      this.buf.set(chunk.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === this.buf.length) await this.flush();
    }
  }
  async zeros(n: number): Promise<void> {
    if (n > 0) await this.write(new Uint8Array(n));
  }
  async flush(): Promise<void> {
    let off = 0;
    while (off < this.used) {
      const { bytesWritten } = await this.fh.write(this.buf, off, this.used - off);
      off += bytesWritten;
    }
    this.used = 0;
  }
}

/**
 * Writes a GGUF v3 file at `path` atomically (temp file in the same directory, fsync, rename).
 * Tensor offsets follow the given order, each aligned to `general.alignment` (default 32).
 */
export async function writeGguf(
  path: string,
  metadata: GgufMetadata,
  tensors: readonly GgufTensorSource[],
): Promise<WriteGgufResult> {
  const alignment = alignmentOf(metadata);
  const keys = new Set<string>();
  for (const [k] of metadata) {
    if (keys.has(k)) throw new Error(`duplicate metadata key ${k}`);
    keys.add(k);
  }

  const h = new HeaderBuilder();
  h.u32(GGUF_MAGIC);
  h.u32(GGUF_VERSION);
  h.u64(tensors.length);
  h.u64(metadata.length);
  for (const [key, value] of metadata) {
    h.string(key);
    writeValue(h, value);
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const size = ggmlTensorBytes(t.type, t.dims);
    h.string(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(t.type);
    h.u64(offset);
    sizes.push(size);
    offset = alignUp(offset + size, alignment);
  }
  h.padTo(alignment);

  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  let renamed = false;
  try {
    const sink = new FileSink(fh);
    await sink.write(h.bytes());
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const start = sink.written;
      for (const chunk of t.data()) await sink.write(chunk);
      const got = sink.written - start;
      if (got !== sizes[i]) throw new Error(`tensor ${t.name}: producer gave ${got} bytes, expected ${sizes[i]}`);
      await sink.zeros(alignUp(got, alignment) - got);
    }
    await sink.flush();
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
    renamed = true;
    await syncDir(dirname(path));
    return { bytes: sink.written, sha256: sink.hash.digest('hex') };
  } finally {
    if (!renamed) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
  }
}

/** Makes the rename itself durable; best effort because some filesystems refuse to open dirs. */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Durability of the directory entry is a bonus; the file contents are already fsynced.
  }
}
