/**
 * LoRA adapter GGUFs: a deterministic generator for the project's model shapes, and the checks an
 * adapter file must pass against its base model before llama.cpp sees it.
 *
 * What llama.cpp reads (node-llama-cpp 3.22.1's bundled `src/llama-adapter.cpp`,
 * `llama_adapter_lora_init_impl`), and why each check exists:
 * - `general.type`, `general.architecture`, `adapter.type` are read with `gguf_get_val_str` and
 *   `adapter.lora.alpha` with `gguf_get_val_f32`: both GGML_ASSERT the stored type, so a wrong type
 *   aborts the process. Each must have exactly that type (or be absent, which llama.cpp refuses
 *   with an error we give first).
 * - `adapter.alora_invocation_tokens`, when present, must be an array of u32 (llama.cpp throws).
 * - Every tensor name ends in `.lora_a` or `.lora_b`, both halves exist, the base tensor exists;
 *   with base weight W of ggml dims [n_in, n_out]: `lora_a` is [n_in, r] and `lora_b` is [r, n_out]
 *   (llama.cpp throws on a mismatch). `token_embd.weight` is the transposed case, refused here:
 *   the generator never writes it and a graph built on it was never checked.
 * - The graph multiplies `lora_b · (lora_a · x)` with ggml_mul_mat: 2-D, a type the CPU matmul
 *   takes, ne0 a whole number of blocks (the reader already checks blocks and file bounds), and
 *   rank r >= 1. Only F32 and F16 halves are accepted: what the converter writes, and a quantised
 *   rank-r row (r < 32) is not a whole block anyway.
 * - Scale: llama.cpp uses `scale * alpha / r` when alpha != 0; alpha must be finite.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GgmlType, GgufValueType as V } from './format.js';
import { GgufFormatError, type GgufInfo, type GgufTensorInfo } from './gguf-info.js';
import { mulberry32, nameSeed } from './prng.js';
import { gv, writeGguf, type GgufMetadata, type GgufTensorSource } from './writer.js';

/** Largest rank accepted (adapters in the wild use 4..256). */
export const LORA_MAX_RANK = 1024;
/** Base tensors the generator adapts, per layer, plus the output projection. */
const GENERATED_TARGETS = ['attn_q', 'attn_v', 'ffn_down'];

export interface GenerateLoraOptions {
  /** The base model's header (the adapter's shapes follow its tensors). */
  readonly base: GgufInfo;
  /** u32 seed for the weights. Defaults to `0`. */
  readonly seed?: number;
  /** Defaults to `8`. */
  readonly rank?: number;
  /** `adapter.lora.alpha`. Defaults to `2 * rank` (effective scale 2 at scale 1). */
  readonly alpha?: number;
  readonly outPath: string;
}

export interface GeneratedLora {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly tensors: number;
  readonly rank: number;
  readonly alpha: number;
}

/** Uniform values in [-amp, amp), one stream per tensor name: order-independent and reproducible. */
function uniformF32(count: number, seed: number, name: string, amp: number): Uint8Array {
  const next = mulberry32(nameSeed(seed, name));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (next() * 2 - 1) * amp;
  return new Uint8Array(out.buffer);
}

/** The base tensors a generated adapter covers: attn_q, attn_v, ffn_down of every layer and output.weight. */
export function loraTargets(base: GgufInfo): GgufTensorInfo[] {
  const re = new RegExp(`^blk\\.\\d+\\.(${GENERATED_TARGETS.join('|')})\\.weight$`);
  return base.tensors.filter((t) => (re.test(t.name) || t.name === 'output.weight') && t.dims.length === 2);
}

/**
 * Writes a LoRA adapter for `base` to `outPath` (atomically): F32 halves with seeded uniform
 * weights, large enough that greedy output differs from the base and between seeds. The same
 * (base, seed, rank, alpha) gives a byte-identical file.
 */
export async function generateLora(opts: GenerateLoraOptions): Promise<GeneratedLora> {
  const seed = opts.seed ?? 0;
  const rank = opts.rank ?? 8;
  const alpha = opts.alpha ?? 2 * rank;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be a u32, got ${seed}`);
  if (!Number.isInteger(rank) || rank < 1 || rank > 64) throw new Error(`rank must be an integer in 1..64, got ${rank}`);
  if (!Number.isFinite(alpha)) throw new Error(`alpha must be finite, got ${alpha}`);
  const arch = opts.base.metadata['general.architecture'];
  if (typeof arch !== 'string') throw new Error('the base model has no general.architecture');
  const targets = loraTargets(opts.base);
  if (targets.length === 0) throw new Error('the base model has no tensor a LoRA adapter can target');
  const tensors: GgufTensorSource[] = [];
  for (const t of targets) {
    const [nIn, nOut] = t.dims as [number, number];
    // A: [n_in, r] ~ U(±1/sqrt(n_in)); B: [r, n_out] ~ U(±0.5/sqrt(r)). B·A·x then moves each
    // output by about the base weights' own size (std 0.02 over n_in inputs) times scale·alpha/r.
    const a = `${t.name.slice(0, -'.weight'.length)}.weight.lora_a`;
    const b = `${t.name.slice(0, -'.weight'.length)}.weight.lora_b`;
    tensors.push(
      { name: a, dims: [nIn, rank], type: GgmlType.F32, data: () => [uniformF32(nIn * rank, seed, a, 1 / Math.sqrt(nIn))] },
      { name: b, dims: [rank, nOut], type: GgmlType.F32, data: () => [uniformF32(rank * nOut, seed, b, 0.5 / Math.sqrt(rank))] },
    );
  }
  const metadata: GgufMetadata = [
    ['general.architecture', gv.string(arch)],
    ['general.type', gv.string('adapter')],
    ['general.name', gv.string(`inferflux-lora-s${seed}-r${rank}`)],
    ['adapter.type', gv.string('lora')],
    ['adapter.lora.alpha', gv.f32(alpha)],
  ];
  await mkdir(dirname(opts.outPath), { recursive: true });
  const { bytes, sha256 } = await writeGguf(opts.outPath, metadata, tensors);
  return { path: opts.outPath, sha256, bytes, tensors: tensors.length, rank, alpha };
}

/** What a valid adapter declares. */
export interface LoraInfo {
  readonly architecture: string;
  readonly alpha: number;
  /** Rank of each adapted tensor pair (the largest, when they differ). */
  readonly rank: number;
  /** Base tensor names the adapter changes. */
  readonly targets: string[];
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(V).map(([k, v]) => [v, k.toLowerCase()]));

/**
 * Throws `GgufFormatError` naming the key or tensor when `adapter` is not a LoRA adapter llama.cpp
 * can apply to `base` without aborting or refusing it. Both are structurally valid headers from
 * `readGgufHeader` (offsets, sizes and block counts already checked).
 */
export function checkLoraAdapter(adapter: GgufInfo, base: GgufInfo, path: string): LoraInfo {
  type Reason = 'bad_value' | 'missing_key' | 'bad_tensor' | 'limit_exceeded';
  const fail: (reason: Reason, what: string) => never = (reason, what) => {
    throw new GgufFormatError(reason, `invalid LoRA adapter ${path}: ${what}`);
  };
  const typeName = (key: string): string => {
    const t = adapter.metadataTypes[key]!;
    return t === V.ARRAY ? `an array of ${TYPE_NAMES[adapter.arrayTypes[key] ?? -1] ?? '?'}` : (TYPE_NAMES[t] ?? String(t));
  };
  const str = (key: string): string => {
    if (!(key in adapter.metadata)) fail('missing_key', `${key} is missing`);
    if (adapter.metadataTypes[key] !== V.STRING) fail('bad_value', `${key} is ${typeName(key)}, llama.cpp reads it as a string`);
    return adapter.metadata[key] as string;
  };
  const type = str('general.type');
  if (type !== 'adapter') fail('bad_value', `general.type is "${type.slice(0, 40)}", expected "adapter" (is this a model rather than an adapter?)`);
  const kind = str('adapter.type');
  if (kind !== 'lora') fail('bad_value', `adapter.type is "${kind.slice(0, 40)}", only "lora" is supported`);
  const arch = str('general.architecture');
  const baseArch = base.metadata['general.architecture'];
  if (arch !== baseArch) fail('bad_value', `general.architecture is "${arch.slice(0, 40)}", the base model is "${String(baseArch)}"`);
  const alphaKey = 'adapter.lora.alpha';
  if (!(alphaKey in adapter.metadata)) fail('missing_key', `${alphaKey} is missing`);
  if (adapter.metadataTypes[alphaKey] !== V.FLOAT32) fail('bad_value', `${alphaKey} is ${typeName(alphaKey)}, llama.cpp reads it as float32`);
  const alpha = adapter.metadata[alphaKey] as number;
  if (!Number.isFinite(alpha)) fail('bad_value', `${alphaKey} is ${alpha}, expected a finite number`);
  const alora = 'adapter.alora_invocation_tokens';
  if (alora in adapter.metadata && (adapter.metadataTypes[alora] !== V.ARRAY || adapter.arrayTypes[alora] !== V.UINT32)) {
    fail('bad_value', `${alora} is ${typeName(alora)}, llama.cpp reads an array of uint32`);
  }

  const baseByName = new Map(base.tensors.map((t) => [t.name, t]));
  const pairs = new Map<string, { a?: GgufTensorInfo; b?: GgufTensorInfo }>();
  for (const t of adapter.tensors) {
    const m = /^(.+)\.lora_([ab])$/.exec(t.name);
    if (!m) fail('bad_tensor', `tensor "${t.name.slice(0, 80)}" is not a .lora_a or .lora_b tensor`);
    const pair = pairs.get(m[1]!) ?? {};
    pair[m[2] as 'a' | 'b'] = t;
    pairs.set(m[1]!, pair);
  }
  if (pairs.size === 0) fail('bad_tensor', 'the adapter has no tensors');
  let rank = 0;
  for (const [name, { a, b }] of pairs) {
    if (!a || !b) fail('bad_tensor', `tensor pair for "${name.slice(0, 80)}" is missing its .lora_${a ? 'b' : 'a'} half`);
    const w = baseByName.get(name);
    if (!w) fail('bad_tensor', `"${name.slice(0, 80)}" is not a tensor of the base model (wrong base model?)`);
    if (name === 'token_embd.weight') fail('bad_tensor', 'adapting token_embd.weight is not supported');
    if (w.dims.length !== 2) fail('bad_tensor', `base tensor "${name}" has ${w.dims.length} dimensions; only 2-D weights can be adapted`);
    for (const h of [a, b]) {
      if (h.type !== GgmlType.F32 && h.type !== GgmlType.F16) fail('bad_tensor', `tensor "${h.name}" has type ${h.typeName}; LoRA halves must be F32 or F16`);
      const dims = [...h.dims];
      while (dims.length > 2 && dims[dims.length - 1] === 1) dims.pop();
      if (dims.length !== 2) fail('bad_tensor', `tensor "${h.name}" has shape [${h.dims.join(', ')}]; LoRA halves are 2-D`);
    }
    const [nIn, nOut] = w.dims as [number, number];
    const [aIn, r] = a.dims as [number, number];
    const [bR, bOut] = b.dims as [number, number];
    if (r < 1 || r > LORA_MAX_RANK) fail('limit_exceeded', `tensor "${a.name}" has rank ${r}, allowed 1..${LORA_MAX_RANK}`);
    if (aIn !== nIn) fail('bad_tensor', `tensor "${a.name}" has shape [${a.dims.join(', ')}], expected [${nIn}, rank] for base [${nIn}, ${nOut}]`);
    if (bOut !== nOut || bR !== r) fail('bad_tensor', `tensor "${b.name}" has shape [${b.dims.join(', ')}], expected [${r}, ${nOut}] (rank ${r}, base [${nIn}, ${nOut}])`);
    rank = Math.max(rank, r);
  }
  return { architecture: arch, alpha, rank, targets: [...pairs.keys()] };
}

/** Reads `path` (structural checks) and checks it as an adapter of `base`. */
export async function validateLoraFile(path: string, base: GgufInfo): Promise<LoraInfo> {
  const { readGgufHeader } = await import('./reader.js');
  return checkLoraAdapter(await readGgufHeader(path), base, path);
}
