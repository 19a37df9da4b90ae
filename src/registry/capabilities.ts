/**
 * What a model can be asked to do, decided from its GGUF header once, at load. Routes refuse what a
 * model lacks with 422 `capability_not_supported` naming the model and the capability.
 *
 * - Text generation (`chat`, `completion`, `tools`) needs a decoder: every architecture except the
 *   encoder-only embedding families. Tools are rendered through the chat template or the server's
 *   tool preamble, so any chat model takes them.
 * - `embeddings`: encoder-only families, and any model that declares `<arch>.pooling_type` (how
 *   llama.cpp marks a model trained to produce sentence embeddings).
 * - `vision`: false for every model. node-llama-cpp 3.22.1 has no multimodal (mtmd/clip) binding,
 *   so image and audio parts cannot reach a model whatever the GGUF holds.
 */
import type { ModelMetadata } from './model-metadata.js';

export interface Capabilities {
  chat: boolean;
  completion: boolean;
  embeddings: boolean;
  tools: boolean;
  vision: false;
}

export type Capability = keyof Capabilities;

/** llama.cpp architectures with no decoder (LLM_ARCH names): they embed, they do not generate. */
const ENCODER_ONLY = new Set(['bert', 'nomic-bert', 'nomic-bert-moe', 'jina-bert-v2', 'jina-bert-v3', 'neo-bert', 't5encoder', 'modern-bert']);

export function capabilitiesOf(meta: ModelMetadata): Capabilities {
  const generates = !ENCODER_ONLY.has(meta.architecture);
  return {
    chat: generates,
    completion: generates,
    embeddings: !generates || meta.poolingType !== null,
    tools: generates,
    vision: false,
  };
}
