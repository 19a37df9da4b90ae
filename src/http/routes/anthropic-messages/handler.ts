/**
 * `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's fields onto a
 * `GenerateInput` (system, multi-turn text, `max_tokens`, `stop_sequences`, `temperature`,
 * `top_p`, `top_k`; `metadata` accepted; tools, `tool_use` and `tool_result` blocks through
 * tools.ts), run by the shared runner with Anthropic's encoder. Server tools, thinking and an
 * assistant prefill are refused with a 400 naming the field; image and document blocks with 422
 * `capability_not_supported` naming the model.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { ChatMessage } from '../../../generation/contract.js';
import type { Metrics } from '../../../metrics.js';
import { samplingWith } from '../../../runtime/sampling.js';
import { presetSampling, resolveModelName, withPresetMessages } from '../../generation/preset.js';
import { readJsonBody } from '../../body.js';
import { runGeneration } from '../../generation/runner.js';
import { sendJson } from '../../respond.js';
import { firstMedia, refuseMedia } from '../../media-refusal.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { chatPromptWithTools, type ToolPlan } from '../../generation/tool-plan.js';
import { anthropicEncoder } from './encoder.js';
import type { ContentBlock, CountTokensRequest, MessagesRequest } from './schema.js';
import { anthropicToolPlan, turnMessages } from './tools.js';

function refuse(param: string, why: string): never {
  throw new InferFluxError('invalid_request', `'${param}' is not supported: ${why}`, { param });
}

/** A text block's text; any other block type (tool blocks are mapped before this) is refused by its path. */
function blockText(b: ContentBlock, at: string): string {
  if (b.type !== 'text') {
    const why = b.type === 'image' || b.type === 'document' ? 'the loaded models are text-only.' : `content blocks of type '${b.type}' are not supported here.`;
    refuse(`${at}.type`, why);
  }
  if (typeof b.text !== 'string') throw new InferFluxError('invalid_request', `Missing required parameter: '${at}.text'.`, { param: `${at}.text` });
  return b.text;
}

/** Image and document blocks: 422 `capability_not_supported` naming the model (media-refusal.ts). */
function refuseMediaBlocks(deps: HttpDeps, body: CountTokensRequest): void {
  const media = firstMedia([[body.system, 'system'], ...body.messages.map((m, i) => [m.content, `messages[${i}].content`] as const)]);
  if (media) refuseMedia(deps.gateway, body.model, media.kind, media.param);
}

/** The conversation as chat messages and the tool plan, after refusing what cannot be honoured. */
export function toChat(body: CountTokensRequest, metrics: Metrics): { messages: ChatMessage[]; tools: ToolPlan } {
  const tools = anthropicToolPlan(body, metrics);
  if (body.thinking !== undefined && body.thinking.type !== 'disabled') refuse('thinking', 'extended thinking is not available on this server.');
  const out: ChatMessage[] = [];
  if (body.system !== undefined) {
    const system = typeof body.system === 'string' ? body.system : body.system.map((b, j) => blockText(b, `system[${j}]`)).join('');
    if (system !== '') out.push({ role: 'system', content: system });
  }
  body.messages.forEach((m, i) => out.push(...turnMessages(m, `messages[${i}].content`, blockText)));
  if (body.messages.at(-1)!.role === 'assistant') {
    refuse(`messages[${body.messages.length - 1}].role`, 'continuing a final assistant turn (prefill) is not available on this server yet; end with a user turn.');
  }
  return { messages: out, tools };
}

export function messagesHandler(deps: HttpDeps, validate: Validator<MessagesRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    refuseMediaBlocks(deps, body);
    const { model, preset } = await resolveModelName(deps, body.model);
    const { messages, tools } = toChat(body, deps.metrics);
    runGeneration(res, deps, {
      tools: tools.options,
      input: {
        requestId: ctx.requestId,
        model,
        adapter: body.adapter,
        prompt: chatPromptWithTools(withPresetMessages(preset, messages), tools),
        // Anthropic's defaults: temperature 1, top_p and top_k off.
        params: samplingWith({
          maxTokens: body.max_tokens,
          temperature: body.temperature,
          topP: body.top_p,
          topK: body.top_k,
          stop: body.stop_sequences,
          grammar: tools.grammar,
        }, presetSampling(preset?.parameters)),
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
    const { model, preset } = await resolveModelName(deps, body.model);
    const { messages, tools } = toChat(body, deps.metrics);
    const tokens = await deps.gateway.countTokens(model, chatPromptWithTools(withPresetMessages(preset, messages), tools));
    sendJson(res, 200, { input_tokens: tokens });
  };
}
