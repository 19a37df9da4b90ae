/**
 * Ollama's model names are `name:tag`, the tag defaulting to `latest`. InferFlux model ids have no
 * tags, so an id is listed as `id:latest` (unless it already has a tag) and both `id` and
 * `id:latest` resolve to it. The model's name goes back to the client as the client spelled it.
 */
import type { Gateway } from '../../../generation/contract.js';
import { servedId } from '../../generation/preset.js';

export function ollamaName(id: string): string {
  return id.includes(':') ? id : `${id}:latest`;
}

/** The server's model id for an Ollama model name (`tiny:latest` → `tiny`); unknown names pass through (the gateway answers 404). */
export function modelIdFor(gateway: Gateway, name: string | undefined): string | undefined {
  if (name === undefined || name === '') return undefined;
  return servedId(gateway, name) ?? name;
}
