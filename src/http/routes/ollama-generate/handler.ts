/**
 * `POST /api/chat` and `POST /api/generate`: Ollama's fields onto a `GenerateInput`, run by the
 * protocol-neutral runner with Ollama's encoder; chat's tools and tool turns through tools.ts.
 * Fields with no honest mapping yet are refused
 * with a 400 naming them (Ollama's `{"error": "..."}` shape, from the route's protocol).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { ChatMessage, PromptInput } from '../../../generation/contract.js';
import { readJsonBody } from '../../body.js';
import { runGeneration } from '../../generation/runner.js';
import { sendJson } from '../../respond.js';
import { refuseMedia } from '../../media-refusal.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { ollamaEncoder, type OllamaKind } from '../ollama-common/encoder.js';
import { constraintForFormat } from '../ollama-common/format.js';
import { modelIdFor } from '../ollama-common/names.js';
import { refuseUnload } from '../ollama-common/keep-alive.js';
import { checkNumCtx, toSampling } from '../ollama-common/options.js';
import { chatPromptWithTools, NO_TOOLS, type ToolPlan } from '../../generation/tool-plan.js';
import { resolveModelName, withPresetMessages } from '../../generation/preset.js';
import type { ModelPreset } from '../../../runtime/models/preset-store.js';
import type { OllamaChatRequest, OllamaGenerateRequest } from './schema.js';
import { ollamaMessages, ollamaToolPlan } from './tools.js';

function refuse(param: string, why: string): never {
  throw new InferFluxError('invalid_request', `'${param}' is not supported: ${why}`, { param });
}

const hasItems = (a: unknown[] | null | undefined): boolean => Array.isArray(a) && a.length > 0;

/** Images: 422 `capability_not_supported` naming the model (media-refusal.ts). */
function refuseImages(deps: HttpDeps, body: OllamaChatRequest | OllamaGenerateRequest, model: string | undefined): void {
  if ('images' in body && hasItems(body.images)) refuseMedia(deps.gateway, model, 'image', 'images');
  const messages = 'messages' in body ? (body.messages ?? []) : [];
  messages.forEach((m, i) => {
    if (hasItems(m.images)) refuseMedia(deps.gateway, model, 'image', `messages[${i}].images`);
  });
}

/** Checks shared by both routes: thinking, unloading. */
function refuseCommon(body: OllamaChatRequest | OllamaGenerateRequest): void {
  if (body.think !== undefined && body.think !== false) refuse('think', 'this server does not separate thinking from the answer.');
  refuseUnload(body.keep_alive);
}

function chatPrompt(body: OllamaChatRequest, tools: ToolPlan, preset: ModelPreset | null): PromptInput {
  (body.messages ?? []).forEach((m, i) => {
    if (hasItems(m.images)) refuse(`messages[${i}].images`, 'the loaded models are text-only.');
  });
  return chatPromptWithTools(withPresetMessages(preset, ollamaMessages(body.messages ?? [])), tools);
}

/** A created model's (preset's) system prompt and messages apply to templated prompts, never to raw ones (as in Ollama). */
function generatePrompt(body: OllamaGenerateRequest, preset: ModelPreset | null): PromptInput {
  if (body.template !== undefined && body.template !== '') {
    refuse('template', "Go prompt templates are not evaluated here; the model's own GGUF chat template is used. Send raw: true with a fully templated prompt instead.");
  }
  if (body.suffix !== undefined && body.suffix !== '') refuse('suffix', 'fill-in-the-middle is not available on this server.');
  if (hasItems(body.images)) refuse('images', 'the loaded models are text-only.');
  if (hasItems(body.context)) refuse('context', 'it is deprecated in Ollama; send the conversation as /api/chat messages.');
  const prompt = body.prompt ?? '';
  if (body.raw === true) {
    if (body.system !== undefined && body.system !== '') refuse('system', 'with raw: true no template is applied, so there is nowhere to put a system prompt; put it in the prompt.');
    return { kind: 'text', text: prompt };
  }
  // Not raw: the prompt is one user turn in the model's chat template, as Ollama does.
  const messages: ChatMessage[] = [];
  if (body.system) messages.push({ role: 'system', content: body.system });
  messages.push({ role: 'user', content: prompt });
  return { kind: 'chat', messages: withPresetMessages(preset, messages) };
}

/** An empty prompt asks Ollama to load the model; here models are always loaded, so it just says so. */
function loaded(res: HttpResponse, kind: OllamaKind, model: string): void {
  const base = { model, created_at: new Date().toISOString() };
  sendJson(res, 200, kind === 'chat' ? { ...base, message: { role: 'assistant', content: '' }, done_reason: 'load', done: true } : { ...base, response: '', done: true, done_reason: 'load' });
}

export function ollamaHandler<K extends OllamaKind>(kind: K, deps: HttpDeps, validate: Validator<K extends 'chat' ? OllamaChatRequest : OllamaGenerateRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    // A created model (preset): its parameters under the request's options.
    const { model: name, preset } = await resolveModelName(deps, body.model);
    refuseImages(deps, body, name);
    refuseCommon(body);
    const modelId = modelIdFor(deps.gateway, name);
    const model = deps.gateway.model(modelId);
    const options = preset ? { ...preset.parameters, ...body.options } : body.options;
    checkNumCtx(options, model.contextSize);
    const constraint = constraintForFormat(body.format, deps.metrics);
    const params = { ...toSampling(options), grammar: constraint?.grammar ?? null };
    const empty = kind === 'chat' ? ((body as OllamaChatRequest).messages ?? []).length === 0 : ((body as OllamaGenerateRequest).prompt ?? '') === '';
    const tools = kind === 'chat' ? ollamaToolPlan(body as OllamaChatRequest, deps.metrics) : NO_TOOLS;
    const prompt = kind === 'chat' ? chatPrompt(body as OllamaChatRequest, tools, preset) : generatePrompt(body as OllamaGenerateRequest, preset);
    if (empty) return loaded(res, kind, body.model);
    runGeneration(res, deps, {
      outputCheck: constraint?.check ?? null,
      tools: tools.options,
      input: { requestId: ctx.requestId, model: modelId, adapter: body.adapter, prompt, params, n: 1, maxTokensField: 'options.num_predict' },
      // Ollama streams unless told not to.
      stream: body.stream !== false,
      encoder: ollamaEncoder(kind, body.model, ctx.startedAt),
    });
  };
}
