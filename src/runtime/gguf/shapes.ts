/**
 * Named model shapes for generated llama-architecture GGUFs.
 *
 * `tiny` is the test fixture: small enough (< 2 MB) to generate and load in milliseconds, yet it
 * keeps GQA (4 query heads, 2 KV heads) and an untied `output.weight` so both code paths are hit.
 * `bench` mirrors SmolLM-135M (576 wide, 30 layers, 9/3 heads, tied embeddings) with Q8_0 matrices,
 * so decode speed and memory behave like a real small model.
 */
import { GgmlType, LlamaFileType } from './format.js';

export interface ModelShape {
  readonly name: string;
  readonly nEmbd: number;
  readonly nLayer: number;
  readonly nFf: number;
  readonly nHead: number;
  readonly nHeadKv: number;
  readonly nVocab: number;
  readonly contextLength: number;
  readonly ropeFreqBase: number;
  readonly rmsEps: number;
  /** ggml type of every 2D weight; 1D norms are always F32 (ggml's norm ops want F32 weights). */
  readonly matrixType: number;
  readonly fileType: number;
  /** When true there is no `output.weight`; llama.cpp reuses `token_embd.weight` for the logits. */
  readonly tiedEmbeddings: boolean;
  /** Standard deviation of the random weights. */
  readonly initStd: number;
  /**
   * `<arch>.pooling_type` (llama.cpp's llama_pooling_type: 1 mean, 2 cls, 3 last), written only
   * when set: it is what marks an embedding model (generation/capabilities.ts). Absent = generative.
   */
  readonly poolingType?: 1 | 2 | 3;
}

const TINY: ModelShape = {
  name: 'tiny',
  nEmbd: 64,
  nLayer: 2,
  nFf: 128,
  nHead: 4,
  nHeadKv: 2,
  nVocab: 2048,
  contextLength: 2048,
  ropeFreqBase: 10000,
  rmsEps: 1e-5,
  matrixType: GgmlType.F16,
  fileType: LlamaFileType.MOSTLY_F16,
  tiedEmbeddings: false,
  initStd: 0.02,
};

export const SHAPES: Record<'tiny' | 'tiny-embed' | 'bench', ModelShape> = {
  tiny: TINY,
  /** `tiny` declaring mean pooling: an embedding model (it still generates, as any llama GGUF). */
  'tiny-embed': { ...TINY, name: 'tiny-embed', poolingType: 1 },
  bench: {
    name: 'bench',
    nEmbd: 576,
    nLayer: 30,
    nFf: 1536,
    nHead: 9,
    nHeadKv: 3,
    nVocab: 32000,
    contextLength: 8192,
    ropeFreqBase: 10000,
    rmsEps: 1e-5,
    matrixType: GgmlType.Q8_0,
    fileType: LlamaFileType.MOSTLY_Q8_0,
    tiedEmbeddings: true,
    initStd: 0.02,
  },
};

export type ShapeName = keyof typeof SHAPES;

export function isShapeName(s: string): s is ShapeName {
  return Object.hasOwn(SHAPES, s);
}

export interface TensorPlan {
  readonly name: string;
  /** ggml order, ne0 first. */
  readonly dims: readonly number[];
  readonly type: number;
  /** Norm weights are all ones; everything else is random. */
  readonly isNorm: boolean;
}

/**
 * The tensors llama.cpp's LLM_ARCH_LLAMA loader asks for, with its dims (ne0 first):
 * wq [n_embd, n_head*head_dim], wk/wv [n_embd, n_head_kv*head_dim], wo [n_head*head_dim, n_embd],
 * gate/up [n_embd, n_ff], down [n_ff, n_embd], token_embd/output [n_embd, n_vocab].
 */
export function planTensors(s: ModelShape): TensorPlan[] {
  const headDim = s.nEmbd / s.nHead;
  const nEmbdKv = headDim * s.nHeadKv;
  const m = s.matrixType;
  const f32 = GgmlType.F32;
  const plan: TensorPlan[] = [{ name: 'token_embd.weight', dims: [s.nEmbd, s.nVocab], type: m, isNorm: false }];
  for (let i = 0; i < s.nLayer; i++) {
    const p = `blk.${i}.`;
    plan.push(
      { name: `${p}attn_norm.weight`, dims: [s.nEmbd], type: f32, isNorm: true },
      { name: `${p}attn_q.weight`, dims: [s.nEmbd, s.nEmbd], type: m, isNorm: false },
      { name: `${p}attn_k.weight`, dims: [s.nEmbd, nEmbdKv], type: m, isNorm: false },
      { name: `${p}attn_v.weight`, dims: [s.nEmbd, nEmbdKv], type: m, isNorm: false },
      { name: `${p}attn_output.weight`, dims: [s.nEmbd, s.nEmbd], type: m, isNorm: false },
      { name: `${p}ffn_norm.weight`, dims: [s.nEmbd], type: f32, isNorm: true },
      { name: `${p}ffn_gate.weight`, dims: [s.nEmbd, s.nFf], type: m, isNorm: false },
      { name: `${p}ffn_up.weight`, dims: [s.nEmbd, s.nFf], type: m, isNorm: false },
      { name: `${p}ffn_down.weight`, dims: [s.nFf, s.nEmbd], type: m, isNorm: false },
    );
  }
  plan.push({ name: 'output_norm.weight', dims: [s.nEmbd], type: f32, isNorm: true });
  if (!s.tiedEmbeddings) plan.push({ name: 'output.weight', dims: [s.nEmbd, s.nVocab], type: m, isNorm: false });
  return plan;
}

/** Total parameter count of a shape (sum of tensor elements). */
export function countParameters(s: ModelShape): number {
  return planTensors(s).reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0);
}
