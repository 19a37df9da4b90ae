/**
 * Ollama's embeddings: `POST /api/embed` → `{model, embeddings, total_duration, load_duration,
 * prompt_eval_count}` (durations in ns) and the legacy `POST /api/embeddings` → `{embedding}`.
 *
 * As Ollama does: an empty `input` ("" or []) or `prompt` ("") embeds nothing and answers an empty
 * result (clients send it to load a model); `truncate` defaults to true and then cuts an input
 * longer than the context (or `options.num_ctx`, when smaller) to its first tokens, explicitly, in
 * the embedding worker; `truncate: false` refuses it (400 naming the input). The legacy route
 * never truncates (Ollama's refuses long prompts too). Sampling options do not change an
 * embedding and are ignored, as by Ollama; `num_ctx` above the embedding context is refused.
 * Vectors are L2-normalised on both routes (Ollama's legacy route returns them unnormalised; the
 * direction, which cosine similarity reads, is the same).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import { readJsonBody } from '../../body.js';
import { runEmbedding } from '../../generation/embed-call.js';
import { sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { refuseUnload } from '../ollama-common/keep-alive.js';
import { checkNumCtx, type OllamaOptions } from '../ollama-common/options.js';
import { modelIdFor } from '../ollama-common/names.js';
import type { OllamaEmbeddingsRequest, OllamaEmbedRequest } from './schema.js';

const ns = (ms: number): number => Math.round(ms * 1e6);

/** The longest input the request allows: `num_ctx` when it is below the embedding context. */
function maxTokensOf(deps: HttpDeps, options: OllamaOptions | undefined): number | null {
  const ctx = deps.config.runtime.embeddings.contextSize;
  checkNumCtx(options, ctx);
  return options?.num_ctx ?? null;
}

export function embedHandler(deps: HttpDeps, validate: Validator<OllamaEmbedRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const started = performance.now();
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    refuseUnload(body.keep_alive);
    if (body.dimensions !== undefined) {
      throw new InferFluxError(
        'invalid_request',
        "'dimensions' is not supported: a model here gives vectors of its own embedding length, and shortening them is only meaningful for models trained for it. Remove 'dimensions'.",
        { param: 'dimensions' },
      );
    }
    const maxTokens = maxTokensOf(deps, body.options);
    const model = modelIdFor(deps.gateway, body.model);
    const texts = typeof body.input === 'string' ? (body.input === '' ? [] : [body.input]) : (body.input ?? []);
    if (texts.length === 0) {
      // Nothing to embed: Ollama answers an empty list (after checking the model exists).
      deps.gateway.model(model);
      return sendJson(res, 200, { model: body.model, embeddings: [], total_duration: ns(performance.now() - started), load_duration: 0, prompt_eval_count: 0 });
    }
    const i = texts.indexOf('');
    if (i >= 0) throw new InferFluxError('invalid_request', `input[${i}] is an empty string; there is nothing to embed.`, { param: `input[${i}]` });
    const out = await runEmbedding(res, deps, {
      requestId: ctx.requestId,
      model,
      inputs: texts.map((text) => ({ text })),
      maxTokens,
      truncate: body.truncate !== false,
      param: 'input',
      single: typeof body.input === 'string',
    });
    sendJson(res, 200, {
      model: body.model,
      embeddings: out.vectors.map((v) => Array.from(v)),
      total_duration: ns(performance.now() - started),
      load_duration: ns(out.loadMs),
      prompt_eval_count: out.promptTokens,
    });
  };
}

export function embeddingsHandler(deps: HttpDeps, validate: Validator<OllamaEmbeddingsRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    refuseUnload(body.keep_alive);
    const maxTokens = maxTokensOf(deps, body.options);
    const model = modelIdFor(deps.gateway, body.model);
    if (body.prompt === undefined || body.prompt === '') {
      deps.gateway.model(model);
      return sendJson(res, 200, { embedding: [] });
    }
    const out = await runEmbedding(res, deps, {
      requestId: ctx.requestId,
      model,
      inputs: [{ text: body.prompt }],
      maxTokens,
      truncate: false,
      param: 'prompt',
      single: true,
    });
    sendJson(res, 200, { embedding: Array.from(out.vectors[0]!) });
  };
}
