/**
 * What llama.cpp asserts on when it loads a model, checked in TypeScript first. A GGML_ASSERT in
 * llama.cpp aborts the whole process (JavaScript cannot catch it), so every value it asserts on,
 * and every value it reads with a type-asserting getter, is checked here against the bundled
 * llama.cpp's rules (node-llama-cpp 3.22.1's `llama/gitRelease.bundle`):
 *
 * - `src/llama-model.cpp` `load_hparams`: `0 < block_count <= LLAMA_MAX_LAYERS (512)`,
 *   `nextn_predict_layers <= block_count`, the expert-count rules, and `rope.scaling.type` one of
 *   llama.cpp's names; all asserted, not thrown.
 * - `src/llama-model-loader.cpp` `get_key`/`get_key_or_arr`: a key must have the exact type
 *   llama.cpp reads it as; a per-layer array has `block_count` entries.
 * - `src/models/llama.cpp`: the graph asserts head sizes agree (`key_length == value_length ==
 *   rope.dimension_count`), and the tensor shapes follow from the hyperparameters.
 * - `src/llama-vocab.cpp`: token strings must be unique (asserted), arrays have one entry per token,
 *   and a tokenizer that adds BOS/EOS must have that token (asserted when tokenizing).
 *
 * Stricter than llama.cpp where llama.cpp silently reinterprets bytes (an f32 array relabelled as
 * i32 is read as integers and served): each key has one accepted type. Architectures other than
 * llama get the shared hyperparameter checks; tensor shapes are checked for llama only (the one
 * architecture whose graph this project mirrors).
 */
import { GgufValueType as V } from './format.js';
import { GgufFormatError, type GgufInfo, type GgufMetaValue } from './gguf-info.js';

/** llama.cpp's LLAMA_MAX_LAYERS and LLAMA_MAX_EXPERTS (src/llama-hparams.h). */
export const LLAMA_MAX_LAYERS = 512;
export const LLAMA_MAX_EXPERTS = 1024;
/** llama_rope_scaling_type names (src/llama-model.cpp LLAMA_ROPE_SCALING_TYPES). */
const ROPE_SCALING_TYPES = new Set(['none', 'linear', 'yarn', 'longrope']);
/** ggml types a CPU matrix multiply or row lookup accepts as weights (not the I* / F64 / Q8_1 / Q8_K helper types). */
const MATRIX_TYPES = new Set([0, 1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 29, 30, 34, 35]);
/** llama_token_type values (0 = undefined … 6 = byte). */
const MAX_TOKEN_TYPE = 6;

type Expect = { scalar: number } | { array: readonly number[] } | { scalarOrArray: number; elements: readonly number[] };

const U32: Expect = { scalar: V.UINT32 };
const F32: Expect = { scalar: V.FLOAT32 };
const BOOL: Expect = { scalar: V.BOOL };
const STR: Expect = { scalar: V.STRING };
/** A u32 hyperparameter that may also be given per layer (get_key_or_arr over uint32 arrays). */
const PER_LAYER: Expect = { scalarOrArray: V.UINT32, elements: [V.UINT32, V.INT32] };

/** Keys llama.cpp reads for every model, with the type it reads them as. */
const GENERAL_KEYS: Record<string, Expect> = {
  'general.architecture': STR,
  'general.name': STR,
  'general.file_type': U32,
  'general.quantization_version': U32,
  'general.alignment': U32,
  'tokenizer.ggml.model': STR,
  'tokenizer.ggml.pre': STR,
  'tokenizer.ggml.tokens': { array: [V.STRING] },
  'tokenizer.ggml.scores': { array: [V.FLOAT32] },
  'tokenizer.ggml.token_type': { array: [V.INT32] },
  'tokenizer.ggml.merges': { array: [V.STRING] },
  'tokenizer.ggml.add_bos_token': BOOL,
  'tokenizer.ggml.add_eos_token': BOOL,
  'tokenizer.ggml.add_sep_token': BOOL,
  'tokenizer.ggml.add_space_prefix': BOOL,
  'tokenizer.ggml.remove_extra_whitespaces': BOOL,
  'tokenizer.chat_template': STR,
};

/** Special-token id keys (llama-vocab.cpp reads each as u32 and checks it against the vocab). */
const TOKEN_ID_KEYS = ['bos', 'eos', 'eot', 'eom', 'unknown', 'seperator', 'padding', 'mask', 'prefix', 'suffix', 'middle', 'fim_pre', 'fim_suf', 'fim_mid', 'fim_pad', 'fim_rep', 'fim_sep'].map(
  (k) => `tokenizer.ggml.${k}_token_id`,
);

/** `<arch>.*` keys read by load_hparams for every architecture. */
function archKeys(a: string): Record<string, Expect> {
  return {
    [`${a}.context_length`]: U32,
    [`${a}.embedding_length`]: U32,
    [`${a}.embedding_length_out`]: U32,
    [`${a}.block_count`]: U32,
    [`${a}.nextn_predict_layers`]: U32,
    [`${a}.vocab_size`]: U32,
    [`${a}.pooling_type`]: U32,
    [`${a}.attention.causal`]: BOOL,
    [`${a}.expert_count`]: U32,
    [`${a}.expert_used_count`]: PER_LAYER,
    [`${a}.expert_group_count`]: U32,
    [`${a}.expert_group_used_count`]: U32,
    [`${a}.feed_forward_length`]: PER_LAYER,
    [`${a}.attention.head_count`]: PER_LAYER,
    [`${a}.attention.head_count_kv`]: PER_LAYER,
    [`${a}.attention.key_length`]: U32,
    [`${a}.attention.value_length`]: U32,
    [`${a}.attention.layer_norm_rms_epsilon`]: F32,
    [`${a}.attention.layer_norm_epsilon`]: F32,
    [`${a}.rope.dimension_count`]: U32,
    [`${a}.rope.freq_base`]: F32,
    [`${a}.rope.scaling.type`]: STR,
    [`${a}.rope.scaling.factor`]: F32,
    [`${a}.rope.scale_linear`]: F32,
    [`${a}.rope.scaling.attn_factor`]: F32,
    [`${a}.rope.scaling.original_context_length`]: U32,
    [`${a}.rope.scaling.finetuned`]: BOOL,
  };
}

const TYPE_NAMES = Object.fromEntries(Object.entries(V).map(([k, v]) => [v, k.toLowerCase()]));

class Checker {
  constructor(
    private readonly info: GgufInfo,
    private readonly path: string,
  ) {}

  fail(reason: 'bad_value' | 'missing_key' | 'bad_tensor' | 'limit_exceeded', what: string): never {
    throw new GgufFormatError(reason, `invalid GGUF ${this.path}: ${what}`);
  }

  has(key: string): boolean {
    return key in this.info.metadata;
  }

  value(key: string): GgufMetaValue | undefined {
    return this.info.metadata[key];
  }

  /** Checks the stored type of `key` (when present) against what llama.cpp reads it as. */
  type(key: string, e: Expect): void {
    if (!this.has(key)) return;
    const t = this.info.metadataTypes[key]!;
    const el = this.info.arrayTypes[key];
    const name = (x: number | undefined) => TYPE_NAMES[x ?? -1] ?? String(x);
    if ('scalar' in e) {
      if (t !== e.scalar) this.fail('bad_value', `${key} is ${t === V.ARRAY ? `an array of ${name(el)}` : name(t)}, llama.cpp reads it as ${name(e.scalar)}`);
    } else if ('array' in e) {
      if (t !== V.ARRAY) this.fail('bad_value', `${key} is ${name(t)}, llama.cpp reads it as an array of ${e.array.map(name).join(' or ')}`);
      if (!e.array.includes(el!)) this.fail('bad_value', `${key} is an array of ${name(el)}, llama.cpp reads an array of ${e.array.map(name).join(' or ')}`);
    } else if (t === V.ARRAY) {
      if (!e.elements.includes(el!)) this.fail('bad_value', `${key} is an array of ${name(el)}, llama.cpp reads an array of ${e.elements.map(name).join(' or ')}`);
    } else if (t !== e.scalarOrArray) {
      this.fail('bad_value', `${key} is ${name(t)}, llama.cpp reads it as ${name(e.scalarOrArray)} (or a per-layer array)`);
    }
  }

  u32(key: string, required: boolean, fallback = 0): number {
    if (!this.has(key)) {
      if (required) this.fail('missing_key', `${key} is missing`);
      return fallback;
    }
    return this.info.metadata[key] as number;
  }

  f32(key: string, fallback: number): number {
    return this.has(key) ? (this.info.metadata[key] as number) : fallback;
  }

  /** A per-layer hyperparameter as one value per layer (`n` layers); an array must have `n` entries. */
  perLayer(key: string, n: number, fallback: number[] | null): number[] {
    if (!this.has(key)) return fallback ?? Array<number>(n).fill(0);
    const v: GgufMetaValue = this.info.metadata[key]!;
    if (!Array.isArray(v)) return Array<number>(n).fill(v as number);
    if (v.length !== n) this.fail('bad_value', `${key} has ${v.length} entries, block_count is ${n}`);
    return v.map((x, i) => {
      const num = x as number;
      if (num < 0) this.fail('bad_value', `${key}[${i}] is ${num}`);
      return num;
    });
  }
}

/**
 * Throws `GgufFormatError` naming the key or tensor when llama.cpp would assert on (abort) or
 * misread `info`. `info` is the structurally valid header from `readGgufHeader`.
 */
export function checkModelRules(info: GgufInfo, path: string): void {
  const c: Checker = new Checker(info, path);
  const arch = info.metadata['general.architecture'];
  if (typeof arch !== 'string' || arch.length === 0) c.fail('missing_key', 'general.architecture is missing or not a string');
  const types: Record<string, Expect> = { ...GENERAL_KEYS, ...archKeys(arch) };
  for (const key of TOKEN_ID_KEYS) types[key] = U32;
  for (const [key, e] of Object.entries(types)) c.type(key, e);
  // An adapter or a vocab-only file has no hyperparameters; llama.cpp reads them only for models.
  if (info.metadata['general.type'] === 'adapter') return;
  const vocab = checkVocab(c, info);
  const h = checkHparams(c, arch);
  if (arch === 'llama') checkLlamaTensors(c, info, h, vocab);
}

interface Hparams {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  nExpert: number;
  headK: number;
  headV: number;
  nRot: number;
}

function checkHparams(c: Checker, a: string): Hparams {
  const nLayer = c.u32(`${a}.block_count`, true);
  if (nLayer < 1 || nLayer > LLAMA_MAX_LAYERS) c.fail('limit_exceeded', `${a}.block_count is ${nLayer}, llama.cpp allows 1..${LLAMA_MAX_LAYERS}`);
  const nEmbd = c.u32(`${a}.embedding_length`, true);
  const nCtx = c.u32(`${a}.context_length`, true);
  if (nEmbd < 1) c.fail('bad_value', `${a}.embedding_length is 0`);
  if (nCtx < 1) c.fail('bad_value', `${a}.context_length is 0`);
  const nextn = c.u32(`${a}.nextn_predict_layers`, false);
  if (nextn > nLayer) c.fail('bad_value', `${a}.nextn_predict_layers ${nextn} exceeds block_count ${nLayer}`);

  const nExpert = c.u32(`${a}.expert_count`, false);
  const used = Math.max(0, ...c.perLayer(`${a}.expert_used_count`, nLayer, null));
  const groups = c.u32(`${a}.expert_group_count`, false);
  const groupUsed = c.u32(`${a}.expert_group_used_count`, false);
  if (nExpert > LLAMA_MAX_EXPERTS) c.fail('limit_exceeded', `${a}.expert_count is ${nExpert}, llama.cpp allows at most ${LLAMA_MAX_EXPERTS}`);
  if (used > nExpert) c.fail('bad_value', `${a}.expert_used_count ${used} exceeds expert_count ${nExpert}`);
  if (nExpert > 0) {
    if (used === 0) c.fail('bad_value', `${a}.expert_used_count must be > 0 when expert_count is ${nExpert}`);
    if (groups >= nExpert) c.fail('bad_value', `${a}.expert_group_count ${groups} must be below expert_count ${nExpert}`);
    if (groups > 1 && (nExpert % groups !== 0 || groupUsed === 0 || groupUsed >= groups)) {
      c.fail('bad_value', `${a}.expert_group_count ${groups} / expert_group_used_count ${groupUsed} do not divide expert_count ${nExpert}`);
    }
  } else if (groups !== 0) {
    c.fail('bad_value', `${a}.expert_group_count is ${groups} without experts`);
  }

  const scaling = c.value(`${a}.rope.scaling.type`);
  if (scaling !== undefined && !ROPE_SCALING_TYPES.has(scaling as string)) {
    c.fail('bad_value', `${a}.rope.scaling.type "${String(scaling)}" is not one of ${[...ROPE_SCALING_TYPES].join(', ')}`);
  }
  for (const key of [`${a}.rope.freq_base`, `${a}.rope.scaling.factor`, `${a}.rope.scale_linear`, `${a}.attention.layer_norm_rms_epsilon`, `${a}.attention.layer_norm_epsilon`]) {
    const v = c.f32(key, 1);
    if (!Number.isFinite(v) || v < 0) c.fail('bad_value', `${key} is ${v}, expected a finite non-negative number`);
  }

  const heads = c.perLayer(`${a}.attention.head_count`, nLayer, null);
  const headsKv = c.perLayer(`${a}.attention.head_count_kv`, nLayer, heads);
  const ff = c.perLayer(`${a}.feed_forward_length`, nLayer, null);
  const nHead = heads[0]!;
  const headK = nHead > 0 ? c.u32(`${a}.attention.key_length`, false, Math.floor(nEmbd / nHead)) : 0;
  const headV = nHead > 0 ? c.u32(`${a}.attention.value_length`, false, Math.floor(nEmbd / nHead)) : 0;
  const nRot = nHead > 0 ? c.u32(`${a}.rope.dimension_count`, false, headK) : 0;
  if (a === 'llama') {
    // The llama graph uses one head count, one KV head count and one FFN width for every layer.
    if (new Set(heads).size !== 1 || new Set(headsKv).size !== 1 || new Set(ff).size !== 1) {
      c.fail('bad_value', 'llama models need the same head_count, head_count_kv and feed_forward_length in every layer');
    }
    const nHeadKv = headsKv[0]!;
    if (nHead < 1 || nHeadKv < 1) c.fail('bad_value', `llama.attention.head_count ${nHead} and head_count_kv ${nHeadKv} must be >= 1`);
    if (nHead % nHeadKv !== 0) c.fail('bad_value', `llama.attention.head_count ${nHead} is not a multiple of head_count_kv ${nHeadKv}`);
    if (!c.has('llama.attention.key_length') && nEmbd % nHead !== 0) c.fail('bad_value', `llama.embedding_length ${nEmbd} is not a multiple of head_count ${nHead}`);
    if (headK < 1 || headK !== headV || headK !== nRot) {
      c.fail('bad_value', `llama head sizes disagree: key_length ${headK}, value_length ${headV}, rope.dimension_count ${nRot} must be equal and >= 1`);
    }
    if (!c.has('llama.attention.layer_norm_rms_epsilon')) c.fail('missing_key', 'llama.attention.layer_norm_rms_epsilon is missing');
    if (ff[0]! < 1 && nExpert === 0) c.fail('bad_value', 'llama.feed_forward_length must be >= 1');
    return { nLayer, nEmbd, nHead, nHeadKv, nFf: ff[0]!, nExpert, headK, headV, nRot };
  }
  return { nLayer, nEmbd, nHead, nHeadKv: headsKv[0]!, nFf: ff[0]!, nExpert, headK, headV, nRot };
}

/** Vocabulary rules; returns the token count (0 when the file has no vocabulary). */
function checkVocab(c: Checker, gguf: GgufInfo): number {
  const m = gguf.metadata;
  const tokens = m['tokenizer.ggml.tokens'] as string[] | undefined;
  if (tokens === undefined) return 0;
  const n = tokens.length;
  if (n === 0) c.fail('bad_value', 'tokenizer.ggml.tokens is empty');
  // llama-vocab.cpp maps each text to its id and asserts no two share a text (an empty token is
  // renamed "[EMPTY_<i>]" first, so that name can collide too).
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const text = tokens[i] === '' ? `[EMPTY_${i}]` : tokens[i]!;
    if (seen.has(text)) c.fail('bad_value', `tokenizer.ggml.tokens[${i}] "${text.slice(0, 40)}" is a duplicate token`);
    seen.add(text);
  }
  for (const key of ['tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
    const arr = m[key] as number[] | undefined;
    if (arr !== undefined && arr.length !== n) c.fail('bad_value', `${key} has ${arr.length} entries for ${n} tokens`);
  }
  const types = m['tokenizer.ggml.token_type'] as number[] | undefined;
  types?.forEach((t, i) => {
    if (t < 0 || t > MAX_TOKEN_TYPE) c.fail('bad_value', `tokenizer.ggml.token_type[${i}] is ${t}, expected 0..${MAX_TOKEN_TYPE}`);
  });
  for (const key of TOKEN_ID_KEYS) {
    const id = m[key] as number | undefined;
    if (id !== undefined && id >= n) c.fail('bad_value', `${key} ${id} is outside the ${n}-token vocabulary`);
  }
  // A tokenizer that adds BOS/EOS asserts the token exists when it tokenizes (SPM defaults: add
  // BOS with id 1, no EOS).
  const spm = m['tokenizer.ggml.model'] === 'llama';
  const addBos = (m['tokenizer.ggml.add_bos_token'] as boolean | undefined) ?? spm;
  const addEos = (m['tokenizer.ggml.add_eos_token'] as boolean | undefined) ?? false;
  const bos = (m['tokenizer.ggml.bos_token_id'] as number | undefined) ?? (spm ? 1 : undefined);
  const eos = (m['tokenizer.ggml.eos_token_id'] as number | undefined) ?? (spm ? 2 : undefined);
  if (addBos && (bos === undefined || bos >= n)) c.fail('bad_value', 'tokenizer.ggml.add_bos_token is set but the vocabulary has no BOS token');
  if (addEos && (eos === undefined || eos >= n)) c.fail('bad_value', 'tokenizer.ggml.add_eos_token is set but the vocabulary has no EOS token');
  return n;
}

/** Tensor names and shapes llama.cpp's llama loader creates (src/models/llama.cpp load_arch_tensors). */
function checkLlamaTensors(c: Checker, gguf: GgufInfo, h: Hparams, nVocab: number): void {
  if (nVocab === 0) c.fail('missing_key', 'tokenizer.ggml.tokens is missing');
  const byName = new Map(gguf.tensors.map((t) => [t.name, t]));
  const used = new Set<string>();
  const want = (name: string, dims: number[], required: boolean, vector: boolean): boolean => {
    const t = byName.get(name);
    if (!t) {
      if (required) c.fail('bad_tensor', `tensor "${name}" is missing`);
      return false;
    }
    used.add(name);
    const got = [...t.dims];
    while (got.length > dims.length && got[got.length - 1] === 1) got.pop();
    if (got.length !== dims.length || got.some((d, i) => d !== dims[i])) {
      c.fail('bad_tensor', `tensor "${name}" has shape [${t.dims.join(', ')}], the hyperparameters give [${dims.join(', ')}]`);
    }
    // Norms and biases are added/multiplied as F32 rows; matrices go through mul_mat/get_rows.
    if (vector ? t.type !== 0 : !MATRIX_TYPES.has(t.type)) c.fail('bad_tensor', `tensor "${name}" has type ${t.typeName}, not usable for a ${vector ? 'vector (F32 only)' : 'weight matrix'}`);
    return true;
  };
  const { nEmbd, nHead, nHeadKv, nFf, nExpert, headK, headV, nRot } = h;
  want('token_embd.weight', [nEmbd, nVocab], true, false);
  want('output_norm.weight', [nEmbd], true, true);
  want('output.weight', [nEmbd, nVocab], false, false);
  want('rope_freqs.weight', [nRot / 2], false, true);
  for (let i = 0; i < h.nLayer; i++) {
    const p = `blk.${i}.`;
    want(`${p}attn_norm.weight`, [nEmbd], true, true);
    const nq = headK * nHead;
    const nk = headK * nHeadKv;
    const nv = headV * nHeadKv;
    if (!want(`${p}attn_qkv.weight`, [nEmbd, nq + nk + nv], false, false)) {
      want(`${p}attn_q.weight`, [nEmbd, nq], true, false);
      want(`${p}attn_k.weight`, [nEmbd, nk], true, false);
      want(`${p}attn_v.weight`, [nEmbd, nv], true, false);
    } else {
      want(`${p}attn_qkv.bias`, [nq + nk + nv], false, true);
    }
    want(`${p}attn_q.bias`, [nq], false, true);
    want(`${p}attn_k.bias`, [nk], false, true);
    want(`${p}attn_v.bias`, [nv], false, true);
    want(`${p}attn_output.weight`, [nq, nEmbd], true, false);
    want(`${p}attn_output.bias`, [nEmbd], false, true);
    want(`${p}ffn_norm.weight`, [nEmbd], true, true);
    if (nExpert === 0) {
      want(`${p}ffn_gate.weight`, [nEmbd, nFf], true, false);
      want(`${p}ffn_down.weight`, [nFf, nEmbd], true, false);
      want(`${p}ffn_up.weight`, [nEmbd, nFf], true, false);
      want(`${p}ffn_gate.bias`, [nFf], false, true);
      want(`${p}ffn_down.bias`, [nEmbd], false, true);
      want(`${p}ffn_up.bias`, [nFf], false, true);
    } else {
      want(`${p}ffn_gate_inp.weight`, [nEmbd, nExpert], true, false);
      want(`${p}ffn_gate_exps.weight`, [nEmbd, nFf, nExpert], false, false);
      want(`${p}ffn_down_exps.weight`, [nFf, nEmbd, nExpert], true, false);
      want(`${p}ffn_up_exps.weight`, [nEmbd, nFf, nExpert], true, false);
    }
  }
  // llama.cpp refuses a file with tensors it did not ask for ("wrong number of tensors").
  for (const t of gguf.tensors) if (!used.has(t.name)) c.fail('bad_tensor', `tensor "${t.name}" is not part of a llama model with these hyperparameters`);
}
