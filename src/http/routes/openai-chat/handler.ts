/**
 * `POST /v1/chat/completions`: parse, validate, map to a `GenerateInput`, run it. No engine logic.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { readJsonBody } from '../../body.js';
import { mediaKindOf, refuseMedia } from '../../media-refusal.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { requestPriority, toSamplingParams } from '../openai-common/schema.js';
import { chatLogprobs, openAIEncoder, type Dialect, type Shape } from '../openai-common/encoder.js';
import { runGeneration } from '../../generation/runner.js';
import { presetSampling, resolveModelName, withPresetMessages } from '../../generation/preset.js';
import { outputConstraintOf } from '../openai-common/structured.js';
import { toolPlanOf } from './tools.js';
import { chatLogprobCount, firstMediaPart, toChatMessage, type ChatRequest } from './schema.js';
import { InferFluxError } from '../../../errors.js';

import { lmStudioExtras, lmStudioModelInfo } from '../lmstudio/encoder.js';

const chatShape: Shape = {
  object: 'chat.completion',
  chunkObject: 'chat.completion.chunk',
  idPrefix: 'chatcmpl-',
  startChoice: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
  textChoice: (index, text, logprobs) => ({ index, delta: { content: text }, logprobs, finish_reason: null }),
  endChoice: (index, reason) => ({ index, delta: {}, logprobs: null, finish_reason: reason }),
  finalChoice: (index, text, reason, logprobs, toolCalls) => ({
    index,
    message: toolCalls
      ? { role: 'assistant', content: text === '' ? null : text, tool_calls: toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) }
      : { role: 'assistant', content: text },
    logprobs,
    finish_reason: reason,
  }),
  // OpenAI's streamed call: index, id and name first, then the arguments in pieces (clients concatenate).
  toolCallStart: (index, call, id, name) => ({
    index,
    delta: { tool_calls: [{ index: call, id, type: 'function', function: { name, arguments: '' } }] },
    logprobs: null,
    finish_reason: null,
  }),
  toolCallArguments: (index, call, piece) => ({ index, delta: { tool_calls: [{ index: call, function: { arguments: piece } }] }, logprobs: null, finish_reason: null }),
  renderLogprobs: (tokens) => chatLogprobs(tokens),
};

export function chatHandler(deps: HttpDeps, validate: Validator<ChatRequest>, dialect: Dialect = 'openai') {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const media = firstMediaPart(body.messages);
    if (media) refuseMedia(deps.gateway, body.model, mediaKindOf(media.type) ?? 'file', media.param);
    const tools = toolPlanOf(body, deps.metrics);
    const constraint = outputConstraintOf(body, deps.metrics);
    // LM Studio's alias adds its stats and model_info (resolving the model first: a 404 before any work).
    const { model, preset } = await resolveModelName(deps, body.model);
    const extras = dialect === 'lmstudio' ? lmStudioExtras(await lmStudioModelInfo(deps.gateway, model)) : undefined;
    const messages = withPresetMessages(preset, body.messages.map(toChatMessage));
    runGeneration(res, deps, {
      outputCheck: constraint?.check ?? null,
      tools: tools.options,
      input: {
        requestId: ctx.requestId,
        model,
        adapter: body.adapter,
        cacheSalt: body.cache_salt,
        prompt: tools.specs ? { kind: 'chat', messages, tools: tools.specs } : { kind: 'chat', messages },
        // Chat has no default cap in OpenAI's API: generate until a stop or the context is full.
        params: toSamplingParams(body, undefined, { logprobs: chatLogprobCount(body), grammar: tools.grammar ?? constraint?.grammar }, presetSampling(preset?.parameters)),
        n: body.n ?? 1,
        priority: requestPriority(body, ctx.priorityHeader),
        maxTokensField: body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens',
      },
      stream: body.stream === true,
      encoder: openAIEncoder(chatShape, { n: body.n ?? 1, includeUsage: body.stream_options?.include_usage === true, extras }),
    });
  };
}
