/**
 * `POST /v1/embeddings` and LM Studio's `/api/v0/embeddings` (the same shapes): parse, validate,
 * map `input` to the facade's items, run, and answer in OpenAI's shape. Vectors are L2-normalised;
 * `base64` is the little-endian float32 bytes of each vector, as OpenAI sends them.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { EmbedItem } from '../../../generation/contract.js';
import { readJsonBody } from '../../body.js';
import { runEmbedding } from '../../generation/embed-call.js';
import { sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import type { EmbeddingsRequest } from './schema.js';

/** The request's inputs, and whether it was one input (errors then name `input`, not `input[0]`). */
function itemsOf(input: EmbeddingsRequest['input']): { items: EmbedItem[]; single: boolean } {
  if (typeof input === 'string') return { items: [{ text: input }], single: true };
  const first = input[0];
  if (typeof first === 'number') return { items: [{ tokens: input as number[] }], single: true };
  if (typeof first === 'string') return { items: (input as string[]).map((text) => ({ text })), single: false };
  return { items: (input as number[][]).map((tokens) => ({ tokens })), single: false };
}

/** float32 little-endian, base64: what OpenAI's `encoding_format: "base64"` carries. */
export function base64Vector(v: Float32Array): string {
  const bytes = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) bytes.writeFloatLE(v[i]!, i * 4);
  return bytes.toString('base64');
}

export function embeddingsHandler(deps: HttpDeps, validate: Validator<EmbeddingsRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    if (body.dimensions !== undefined) {
      throw new InferFluxError(
        'invalid_request',
        "'dimensions' is not supported: a model here gives vectors of its own embedding length, and shortening them is only meaningful for models trained for it. Remove 'dimensions'.",
        { param: 'dimensions' },
      );
    }
    const { items, single } = itemsOf(body.input);
    const out = await runEmbedding(res, deps, {
      requestId: ctx.requestId,
      model: body.model,
      inputs: items,
      maxTokens: null,
      truncate: false,
      param: 'input',
      single,
    });
    const base64 = body.encoding_format === 'base64';
    sendJson(res, 200, {
      object: 'list',
      data: out.vectors.map((v, index) => ({ object: 'embedding', index, embedding: base64 ? base64Vector(v) : Array.from(v) })),
      model: out.model,
      usage: { prompt_tokens: out.promptTokens, total_tokens: out.promptTokens },
    });
  };
}
