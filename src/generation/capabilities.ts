/**
 * What a model can do, decided from its config entry and its GGUF metadata. Small pure functions,
 * so a model registry can fill its `capabilities` from them.
 *
 * Embeddings: an embedding model declares how its token states become one vector, in
 * `<arch>.pooling_type` (llama.cpp's `llama_pooling_type`: 1 mean, 2 cls, 3 last). A generative
 * model has none (0 or absent: llama.cpp then returns the last token's hidden state, which is not
 * trained as an embedding), and 4 (rank) is a reranker's score head. So `auto` serves embeddings
 * for 1..3 only; an operator who wants a generative model's last-token state anyway says `true`.
 */

/** llama.h `enum llama_pooling_type`, by the number stored in GGUF. */
export const POOLING_TYPES = { 0: 'none', 1: 'mean', 2: 'cls', 3: 'last', 4: 'rank' } as const;
export type PoolingType = (typeof POOLING_TYPES)[keyof typeof POOLING_TYPES];

/** The pooling a GGUF declares (`<arch>.pooling_type`), or null when it declares none. */
export function poolingTypeOf(metadata: Readonly<Record<string, unknown>>): PoolingType | null {
  const arch = metadata['general.architecture'];
  if (typeof arch !== 'string') return null;
  const raw = metadata[`${arch}.pooling_type`];
  const n = typeof raw === 'bigint' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Object.hasOwn(POOLING_TYPES, n)) return null;
  return POOLING_TYPES[n as keyof typeof POOLING_TYPES];
}

export interface EmbeddingCapabilityInput {
  /** The model entry's `embeddings` setting. */
  embeddings: 'auto' | boolean;
  /** The model's GGUF metadata (flat keys, as the GGUF reader returns them). */
  metadata: Readonly<Record<string, unknown>>;
}

export function supportsEmbeddings(model: EmbeddingCapabilityInput): boolean {
  if (model.embeddings !== 'auto') return model.embeddings;
  const pooling = poolingTypeOf(model.metadata);
  return pooling === 'mean' || pooling === 'cls' || pooling === 'last';
}
