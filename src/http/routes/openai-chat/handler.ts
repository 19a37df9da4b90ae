/**
 * `POST /v1/chat/completions`: parse, validate, map to a `GenerateInput`, run it. No engine logic.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { FinishReason } from '../../../generation/contract.js';
import { readJsonBody } from '../../body.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { requestPriority, toSamplingParams } from '../openai-common/schema.js';
import { openAIEncoder, type Dialect, type Shape } from '../openai-common/encoder.js';
import { runGeneration } from '../../generation/runner.js';
import { lmStudioExtras, lmStudioModelInfo } from '../lmstudio/encoder.js';
import { toChatMessage, type ChatRequest } from './schema.js';

const chatShape: Shape = {
  object: 'chat.completion',
  chunkObject: 'chat.completion.chunk',
  idPrefix: 'chatcmpl-',
  startChoice: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
  textChoice: (index, text) => ({ index, delta: { content: text }, logprobs: null, finish_reason: null }),
  endChoice: (index, reason: FinishReason) => ({ index, delta: {}, logprobs: null, finish_reason: reason }),
  finalChoice: (index, text, reason) => ({
    index,
    message: { role: 'assistant', content: text },
    logprobs: null,
    finish_reason: reason,
  }),
};

export function chatHandler(deps: HttpDeps, validate: Validator<ChatRequest>, dialect: Dialect = 'openai') {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    // LM Studio's alias adds its stats and model_info (resolving the model first: a 404 before any work).
    const extras = dialect === 'lmstudio' ? lmStudioExtras(await lmStudioModelInfo(deps.gateway, body.model)) : undefined;
    runGeneration(res, deps, {
      input: {
        requestId: ctx.requestId,
        model: body.model,
        prompt: { kind: 'chat', messages: body.messages.map(toChatMessage) },
        // Chat has no default cap in OpenAI's API: generate until a stop or the context is full.
        params: toSamplingParams(body, undefined),
        n: body.n ?? 1,
        priority: requestPriority(body, ctx.priorityHeader),
      },
      stream: body.stream === true,
      encoder: openAIEncoder(chatShape, { n: body.n ?? 1, includeUsage: body.stream_options?.include_usage === true, extras }),
    });
  };
}
