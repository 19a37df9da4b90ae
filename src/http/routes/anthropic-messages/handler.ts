/**
 * `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's fields onto a
 * `GenerateInput` (system, multi-turn text, `max_tokens`, `stop_sequences`, `temperature`,
 * `top_p`, `top_k`; `metadata` accepted), run by the shared runner with Anthropic's encoder.
 * Tools, thinking and an assistant prefill are refused with a 400 naming the field; image and
 * document blocks with 422 `capability_not_supported` naming the model.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { ChatMessage } from '../../../generation/contract.js';
import { samplingWith } from '../../../runtime/sampling.js';
import { readJsonBody } from '../../body.js';
import { runGeneration } from '../../generation/runner.js';
import { sendJson } from '../../respond.js';
import { firstMedia, refuseMedia } from '../../media-refusal.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { anthropicEncoder } from './encoder.js';
import type { ContentBlock, CountTokensRequest, MessagesRequest } from './schema.js';

function refuse(param: string, why: string): never {
  throw new InferFluxError('invalid_request', `'${param}' is not supported: ${why}`, { param });
}

const NO_TOOLS = 'tool calling is not available on this server yet.';

/** Text blocks joined; any other block type is refused by its path. */
function textOf(content: string | ContentBlock[], at: string): string {
  if (typeof content === 'string') return content;
  return content
    .map((b, j) => {
      if (b.type !== 'text') {
        const why = b.type === 'tool_use' || b.type === 'tool_result' ? NO_TOOLS : b.type === 'image' || b.type === 'document' ? 'the loaded models are text-only.' : `content blocks of type '${b.type}' are not supported (only 'text').`;
        refuse(`${at}[${j}].type`, why);
      }
      if (typeof b.text !== 'string') throw new InferFluxError('invalid_request', `Missing required parameter: '${at}[${j}].text'.`, { param: `${at}[${j}].text` });
      return b.text;
    })
    .join('');
}

/** Image and document blocks: 422 `capability_not_supported` naming the model (media-refusal.ts). */
function refuseMediaBlocks(deps: HttpDeps, body: CountTokensRequest): void {
  const media = firstMedia([[body.system, 'system'], ...body.messages.map((m, i) => [m.content, `messages[${i}].content`] as const)]);
  if (media) refuseMedia(deps.gateway, body.model, media.kind, media.param);
}

/** The conversation as chat messages, after refusing what cannot be honoured. */
export function toChat(body: CountTokensRequest): ChatMessage[] {
  if (body.tools !== undefined && body.tools.length > 0) refuse('tools', NO_TOOLS);
  if (body.tool_choice !== undefined) refuse('tool_choice', NO_TOOLS);
  if (body.thinking !== undefined && body.thinking.type !== 'disabled') refuse('thinking', 'extended thinking is not available on this server.');
  const out: ChatMessage[] = [];
  if (body.system !== undefined) {
    const system = textOf(body.system, 'system');
    if (system !== '') out.push({ role: 'system', content: system });
  }
  body.messages.forEach((m, i) => out.push({ role: m.role, content: textOf(m.content, `messages[${i}].content`) }));
  if (body.messages.at(-1)!.role === 'assistant') {
    refuse(`messages[${body.messages.length - 1}].role`, 'continuing a final assistant turn (prefill) is not available on this server yet; end with a user turn.');
  }
  return out;
}

export function messagesHandler(deps: HttpDeps, validate: Validator<MessagesRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    refuseMediaBlocks(deps, body);
    const messages = toChat(body);
    runGeneration(res, deps, {
      input: {
        requestId: ctx.requestId,
        model: body.model,
        prompt: { kind: 'chat', messages },
        // Anthropic's defaults: temperature 1, top_p and top_k off.
        params: samplingWith({ maxTokens: body.max_tokens, temperature: body.temperature, topP: body.top_p, topK: body.top_k, stop: body.stop_sequences }),
        n: 1,
      },
      stream: body.stream === true,
      encoder: anthropicEncoder(body.model),
    });
  };
}

export function countTokensHandler(deps: HttpDeps, validate: Validator<CountTokensRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    refuseMediaBlocks(deps, body);
    const tokens = await deps.gateway.countTokens(body.model, { kind: 'chat', messages: toChat(body) });
    sendJson(res, 200, { input_tokens: tokens });
  };
}
