/**
 * What a GGUF header says about the model it holds, summarised for the model routes
 * (`/v1/models/{id}`, Ollama `/api/show`) and the registry (capabilities, memory estimate):
 * architecture, parameter count, quantisation, context length, mixture-of-experts counts, the chat
 * template and the attention shape the KV estimate needs. Pure: reads the parsed header only.
 */
import { dominantType, type GgufInfo, type GgufMetaValue } from '../runtime/gguf/gguf-info.js';

export interface ModelMetadata {
  architecture: string;
  /** Elements over every tensor: what "7B" counts. */
  parameterCount: number;
  /** Dominant weight type (the one holding most bytes), e.g. `Q8_0`, `F16`: Ollama's quantization level. */
  quantization: string;
  /** Training context length (`<arch>.context_length`), 0 when the file does not say. */
  contextLength: number;
  isMoe: boolean;
  /** `<arch>.expert_count`, 0 for a dense model. */
  nExperts: number;
  /** `<arch>.expert_used_count` (the largest, when given per layer), 0 for a dense model. */
  nActiveExperts: number;
  /** `tokenizer.chat_template`, '' when the file has none. */
  chatTemplate: string;
  /** `<arch>.pooling_type` when present (embedding models declare one), else null. */
  poolingType: number | null;
  layers: number;
  embeddingLength: number;
  headCount: number;
  headCountKv: number;
  /** Per-head K and V widths (`<arch>.attention.key_length`/`value_length`, else embedding / heads). */
  keyLength: number;
  valueLength: number;
}

/** A number from a scalar or (largest of) a per-layer array; `fallback` when absent or not numeric. */
function num(v: GgufMetaValue | undefined, fallback = 0): number {
  if (Array.isArray(v)) return v.reduce<number>((m, x) => Math.max(m, num(x, 0)), v.length ? 0 : fallback);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return fallback;
}


export function modelMetadata(info: GgufInfo): ModelMetadata {
  const md = info.metadata;
  const arch = typeof md['general.architecture'] === 'string' ? md['general.architecture'] : 'unknown';
  const at = (key: string): GgufMetaValue | undefined => md[`${arch}.${key}`];
  const template = md['tokenizer.chat_template'];
  const nExperts = num(at('expert_count'));
  const embeddingLength = num(at('embedding_length'));
  const headCount = num(at('attention.head_count'));
  const headWidth = headCount > 0 ? Math.floor(embeddingLength / headCount) : 0;
  let parameterCount = 0;
  for (const t of info.tensors) parameterCount += t.dims.reduce((a, b) => a * b, 1);
  return {
    architecture: arch,
    parameterCount,
    quantization: dominantType(info),
    contextLength: num(at('context_length')),
    isMoe: nExperts > 1,
    nExperts,
    nActiveExperts: nExperts > 0 ? num(at('expert_used_count')) : 0,
    chatTemplate: typeof template === 'string' ? template : '',
    poolingType: at('pooling_type') === undefined ? null : num(at('pooling_type')),
    layers: num(at('block_count')),
    embeddingLength,
    headCount,
    headCountKv: num(at('attention.head_count_kv'), headCount),
    keyLength: num(at('attention.key_length'), headWidth),
    valueLength: num(at('attention.value_length'), headWidth),
  };
}
