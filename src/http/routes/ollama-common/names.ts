/**
 * Ollama's model names are `name:tag`, the tag defaulting to `latest`. InferFlux model ids have no
 * tags, so an id is listed as `id:latest` (unless it already has a tag) and both `id` and
 * `id:latest` resolve to it. The model's name goes back to the client as the client spelled it.
 */
import type { Gateway, ModelInfo } from '../../../generation/contract.js';

export function ollamaName(id: string): string {
  return id.includes(':') ? id : `${id}:latest`;
}

/** The server's model id for an Ollama model name (`tiny:latest` → `tiny`); unknown names pass through (the gateway answers 404). */
export function modelIdFor(gateway: Gateway, name: string | undefined): string | undefined {
  if (name === undefined || name === '') return undefined;
  const models: ModelInfo[] = gateway.models();
  if (models.some((m) => m.id === name)) return name;
  if (name.endsWith(':latest')) {
    const bare = name.slice(0, -':latest'.length);
    if (models.some((m) => m.id === bare)) return bare;
  }
  return name;
}
