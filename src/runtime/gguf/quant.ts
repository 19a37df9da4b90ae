/**
 * float32 -> ggml encodings: IEEE half (F16) and Q8_0.
 *
 * Q8_0 block (34 bytes) as ggml's `block_q8_0`: f16 scale d = max|x| / 127, then 32 int8
 * q = round(x / d), rounding half away from zero like C `roundf` in `quantize_row_q8_0_ref`, so our
 * bytes match what llama.cpp's own quantizer would write for the same floats.
 */

export const Q8_0_BLOCK = 32;
export const Q8_0_BYTES = 34;

// One shared scratch pair to read float bits without allocating per call.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 -> IEEE 754 half bits, round to nearest even, overflow to ±Inf, NaN kept as NaN. */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: result m = value / 2^-24 = (implicit 1 | mant) >> (14 - e), rounded to even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) !== 0)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and reaches Inf at the top).
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) !== 0)) half++;
  return sign | half;
}

/** IEEE 754 half bits -> number. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Encodes `src` as little-endian F16. */
export function toF16(src: Float32Array): Uint8Array {
  const out = new Uint8Array(src.length * 2);
  for (let i = 0, o = 0; i < src.length; i++, o += 2) {
    const h = f32ToF16Bits(src[i]!);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
  }
  return out;
}

/** Quantizes `src` (length a multiple of 32) to Q8_0 blocks. */
export function quantizeQ8_0(src: Float32Array): Uint8Array {
  if (src.length % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 needs a multiple of 32 values, got ${src.length}`);
  const nBlocks = src.length / Q8_0_BLOCK;
  const out = new Uint8Array(nBlocks * Q8_0_BYTES);
  const q = new Int8Array(out.buffer, out.byteOffset, out.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const a = Math.abs(src[base + j]!);
      if (a > amax) amax = a;
    }
    const d = amax / 127;
    // llama.cpp scales by 1/d in float32, so do the same to get identical rounding on ties.
    const id = d !== 0 ? Math.fround(1 / Math.fround(d)) : 0;
    const h = f32ToF16Bits(d);
    const o = b * Q8_0_BYTES;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const v = Math.fround(src[base + j]! * id);
      q[o + 2 + j] = v < 0 ? -Math.round(-v) : Math.round(v);
    }
  }
  return out;
}

/** Decodes Q8_0 blocks back to floats (used by tests to bound the quantization error). */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  if (bytes.length % Q8_0_BYTES !== 0) throw new Error(`Q8_0 data must be whole 34-byte blocks, got ${bytes.length}`);
  const nBlocks = bytes.length / Q8_0_BYTES;
  const out = new Float32Array(nBlocks * Q8_0_BLOCK);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let b = 0; b < nBlocks; b++) {
    const o = b * Q8_0_BYTES;
    const d = f16BitsToF32(bytes[o]! | (bytes[o + 1]! << 8));
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * q[o + 2 + j]!;
  }
  return out;
}
