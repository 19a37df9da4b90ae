/**
 * `POST /v1/chat/completions`: parse, validate, map to a `GenerateInput`, run it. No engine logic.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { FinishReason } from '../../../generation/contract.js';
import { readJsonBody } from '../../body.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { requestPriority, toSamplingParams } from '../openai-common/schema.js';
import { chatLogprobs, openAIEncoder, type Shape } from '../openai-common/encoder.js';
import { runGeneration } from '../../generation/runner.js';
import { outputConstraintOf } from '../openai-common/structured.js';
import { chatLogprobCount, firstMediaPart, toChatMessage, type ChatRequest } from './schema.js';
import { InferFluxError } from '../../../errors.js';

const chatShape: Shape = {
  object: 'chat.completion',
  chunkObject: 'chat.completion.chunk',
  idPrefix: 'chatcmpl-',
  startChoice: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
  textChoice: (index, text, logprobs) => ({ index, delta: { content: text }, logprobs, finish_reason: null }),
  endChoice: (index, reason: FinishReason) => ({ index, delta: {}, logprobs: null, finish_reason: reason }),
  finalChoice: (index, text, reason, logprobs) => ({
    index,
    message: { role: 'assistant', content: text },
    logprobs,
    finish_reason: reason,
  }),
  renderLogprobs: (tokens) => chatLogprobs(tokens),
};

export function chatHandler(deps: HttpDeps, validate: Validator<ChatRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const media = firstMediaPart(body.messages);
    if (media) {
      const model = body.model ?? deps.gateway.models().find((m) => m.isDefault)?.id ?? 'default';
      const what = media.type === 'image_url' ? 'image' : media.type === 'input_audio' ? 'audio' : 'file';
      throw new InferFluxError('capability_not_supported', `Model '${model}' does not accept ${what} input; send text content only.`, {
        param: media.param,
      });
    }
    const constraint = outputConstraintOf(body, deps.metrics);
    runGeneration(res, deps, {
      outputCheck: constraint?.check ?? null,
      input: {
        requestId: ctx.requestId,
        model: body.model,
        prompt: { kind: 'chat', messages: body.messages.map(toChatMessage) },
        // Chat has no default cap in OpenAI's API: generate until a stop or the context is full.
        params: toSamplingParams(body, undefined, { logprobs: chatLogprobCount(body), grammar: constraint?.grammar }),
        n: body.n ?? 1,
        priority: requestPriority(body, ctx.priorityHeader),
      },
      stream: body.stream === true,
      encoder: openAIEncoder(chatShape, { n: body.n ?? 1, includeUsage: body.stream_options?.include_usage === true }),
    });
  };
}
