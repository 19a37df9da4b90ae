/**
 * Image, audio and file input, refused the same way on every protocol: 422
 * `capability_not_supported` naming the model and the capability. node-llama-cpp 3.22.1 has no
 * multimodal (mtmd/clip) binding, so no served model can take such a part, whatever its GGUF
 * holds (every model's `capabilities.vision` is false). Each route finds its own media parts
 * (OpenAI `image_url`/`input_audio`/`file`, Responses `input_image`/`input_audio`/`input_file`,
 * Anthropic `image`/`document` blocks, Ollama `images`) and hands the first one here.
 */
import { InferFluxError } from '../errors.js';
import type { Gateway } from '../generation/contract.js';

export type MediaKind = 'image' | 'audio' | 'file';

const CAPABILITY: Record<MediaKind, string> = { image: 'vision', audio: 'audio', file: 'file input' };

/** A part's type, as each protocol names it, to the kind of media it carries (undefined = text or other). */
export function mediaKindOf(type: string): MediaKind | undefined {
  switch (type) {
    case 'image_url':
    case 'input_image':
    case 'image':
      return 'image';
    case 'input_audio':
    case 'audio':
      return 'audio';
    case 'file':
    case 'input_file':
    case 'document':
      return 'file';
    default:
      return undefined;
  }
}

export function refuseMedia(gateway: Gateway, model: string | undefined, kind: MediaKind, param: string): never {
  const name = model || gateway.models().find((m) => m.isDefault)?.id || 'default';
  throw new InferFluxError(
    'capability_not_supported',
    `Model '${name}' does not support ${kind} input (capability '${CAPABILITY[kind]}'): this server's llama.cpp binding has no multimodal support yet; send text content only.`,
    // The metric's model label: a served id, never an arbitrary name from the request.
    { param, capability: { model: gateway.models().some((m) => m.id === name) ? name : 'unknown', name: CAPABILITY[kind] } },
  );
}

/**
 * The first media part among content fields, each given with its request path: a content field is
 * a string (text) or a list of typed parts/blocks. Null when every part is text or another kind.
 */
export function firstMedia(contents: Iterable<readonly [content: unknown, at: string]>): { kind: MediaKind; param: string } | null {
  for (const [content, at] of contents) {
    if (!Array.isArray(content)) continue;
    for (let j = 0; j < content.length; j++) {
      const type = (content[j] as { type?: unknown } | null)?.type;
      const kind = typeof type === 'string' ? mediaKindOf(type) : undefined;
      if (kind) return { kind, param: `${at}[${j}]` };
    }
  }
  return null;
}
