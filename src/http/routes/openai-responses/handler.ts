/**
 * `POST /v1/responses`, stateless: `input` (a string or message items) and `instructions` onto a
 * chat prompt, `max_output_tokens`/`temperature`/`top_p` onto sampling, function tools and
 * `function_call`/`function_call_output` items through tools.ts, `text.format` onto the same
 * grammar-constrained output as chat's `response_format`, run by the shared runner with the
 * Responses encoder. Whatever needs server-side state (`store: true`, `previous_response_id`,
 * `conversation`, `background`) or machinery this server lacks (hosted tools, reasoning,
 * non-text inputs) is refused with a 400 naming the field. A WebSocket turn
 * (ws/responses-socket.ts) always streams, may continue its connection's last response, and may
 * be a warm-up (`generate: false`).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { ChatMessage } from '../../../generation/contract.js';
import { compileOutputConstraint, type OutputConstraint } from '../../../generation/structured-output.js';
import type { Metrics } from '../../../metrics.js';
import { samplingWith } from '../../../runtime/sampling.js';
import { presetSampling, resolveModelName, withPresetMessages } from '../../generation/preset.js';
import { readJsonBody } from '../../body.js';
import { runGeneration } from '../../generation/runner.js';
import { chatPromptWithTools } from '../../generation/tool-plan.js';
import { firstMedia, refuseMedia } from '../../media-refusal.js';
import type { HttpDeps, RequestContext, SocketConversation } from '../../types.js';
import type { Validator } from '../../validate.js';
import { requestPriority } from '../openai-common/schema.js';
import { responsesEncoder } from './encoder.js';
import type { InputContent, InputItem, ResponsesRequest } from './schema.js';
import { addFunctionCall, functionCallOutput, responsesToolPlan } from './tools.js';

function refuse(param: string, why: string): never {
  throw new InferFluxError('invalid_request', `'${param}' is not supported: ${why}`, { param });
}

const STATELESS = 'this server is stateless and keeps no responses; send the whole conversation in input.';

function refuseUnsupported(b: ResponsesRequest): void {
  if (b.store === true) refuse('store', `${STATELESS} Send store: false.`);
  if (b.previous_response_id) refuse('previous_response_id', STATELESS);
  if (b.conversation !== undefined && b.conversation !== null) refuse('conversation', STATELESS);
  if (b.background === true) refuse('background', STATELESS);
  const r = b.reasoning;
  if (r) {
    for (const key of ['effort', 'summary', 'generate_summary'] as const) {
      if (r[key] !== undefined && r[key] !== null) refuse(`reasoning.${key}`, 'the served models do not reason separately.');
    }
  }
  if (b.prompt !== undefined && b.prompt !== null) refuse('prompt', 'stored prompt templates need server-side state.');
  const v = b.text?.verbosity;
  if (v !== undefined && v !== null && v !== 'medium') refuse('text.verbosity', "the served models have no verbosity control; send 'medium' or leave it out.");
}

/**
 * Log probabilities of the output text: asked with `include: ["message.output_text.logprobs"]`,
 * `top_logprobs` alternatives per token (asking alternatives asks the log probabilities too).
 * Null when not asked.
 */
function logprobCount(b: ResponsesRequest): number | null {
  const asked = b.include?.includes('message.output_text.logprobs') === true || (b.top_logprobs ?? 0) > 0;
  return asked ? (b.top_logprobs ?? 0) : null;
}

/**
 * A WebSocket turn: `stream` is implicit, and `previous_response_id` names the connection's most
 * recent response, whose input and output items go before this turn's (then the id is spent: the
 * rest of the handler sees one whole conversation, as over HTTP).
 */
function continued(b: ResponsesRequest, socket: SocketConversation): ResponsesRequest {
  if (b.stream === false) refuse('stream', 'a WebSocket turn always streams its events; leave stream out.');
  const own: InputItem[] = typeof b.input === 'string' ? [{ type: 'message', role: 'user', content: b.input }] : b.input;
  let items = own;
  const prev = b.previous_response_id;
  if (prev !== undefined && prev !== null) {
    const before = socket.itemsOf(prev);
    if (before === null) {
      throw new InferFluxError(
        'previous_response_not_found',
        `Previous response with id '${prev.slice(0, 128)}' not found: a connection keeps only its most recent response, in memory. Send the whole conversation with previous_response_id null.`,
        { param: 'previous_response_id' },
      );
    }
    items = [...(before as InputItem[]), ...own];
  }
  socket.started(items);
  return { ...b, input: items, previous_response_id: null, stream: true };
}

/** `text.format` as a compiled output constraint (the grammar and the check of the finished text), or null for free text. */
function textFormatConstraint(b: ResponsesRequest, metrics: Metrics): OutputConstraint | null {
  const f = b.text?.format;
  if (f === undefined || f.type === 'text') return null;
  if (f.type === 'json_schema' && f.schema === undefined) {
    throw new InferFluxError('invalid_request', "Missing required parameter: 'text.format.schema' (the JSON Schema the output must follow).", { param: 'text.format.schema' });
  }
  const c = compileOutputConstraint(f.type === 'json_object' ? { kind: 'json_object', param: 'text.format' } : { kind: 'json_schema', schema: f.schema, param: 'text.format.schema' });
  metrics.grammarCompile.observe({ kind: f.type }, c.compileMs / 1000);
  return c;
}

/** Text content parts joined; images, files and other parts refused by their path. */
function textOf(content: string | InputContent[] | undefined, at: string): string {
  if (content === undefined) throw new InferFluxError('invalid_request', `Missing required parameter: '${at}'.`, { param: at });
  if (typeof content === 'string') return content;
  return content
    .map((c, j) => {
      if (c.type !== 'input_text' && c.type !== 'output_text') refuse(`${at}[${j}].type`, `'${c.type}' content is not supported (only input_text and output_text).`);
      return c.text ?? '';
    })
    .join('');
}

export function toMessages(b: ResponsesRequest): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (b.instructions) out.push({ role: 'system', content: b.instructions });
  if (typeof b.input === 'string') {
    out.push({ role: 'user', content: b.input });
    return out;
  }
  b.input.forEach((item, i) => {
    const type = item.type ?? 'message';
    if (type === 'function_call') return addFunctionCall(out, item, `input[${i}]`);
    if (type === 'function_call_output') return void out.push(functionCallOutput(item, `input[${i}]`));
    if (type !== 'message') {
      const why = type.endsWith('_call') || type.endsWith('_call_output') ? `'${type}' items belong to hosted tools; only function calls are served.` : type === 'item_reference' ? STATELESS : `'${type}' items are not supported (only messages and function calls).`;
      refuse(`input[${i}].type`, why);
    }
    if (item.role === undefined) throw new InferFluxError('invalid_request', `Missing required parameter: 'input[${i}].role'.`, { param: `input[${i}].role` });
    out.push({ role: item.role, content: textOf(item.content, `input[${i}].content`) });
  });
  return out;
}

export function responsesHandler(deps: HttpDeps, validate: Validator<ResponsesRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const socket = ctx.conversation;
    if (!socket && body.generate !== undefined) refuse('generate', 'it belongs to WebSocket mode (GET /v1/responses upgraded).');
    const b = socket ? continued(body, socket) : body;
    // A warm-up turn (WebSocket only): the prompt is prefilled into the prefix cache by a one-token
    // generation whose token is dropped; the answer is an empty response the next turn can continue.
    const warmup = socket !== undefined && body.generate === false;
    const media = typeof b.input === 'string' ? null : firstMedia(b.input.map((item, i) => [item.content, `input[${i}].content`] as const));
    if (media) refuseMedia(deps.gateway, b.model, media.kind, media.param);
    refuseUnsupported(b);
    const tools = responsesToolPlan(b, deps.metrics);
    const constraint = textFormatConstraint(b, deps.metrics);
    const { model, preset } = await resolveModelName(deps, b.model);
    const messages = withPresetMessages(preset, toMessages(b));
    const params = samplingWith(
      {
        maxTokens: warmup ? 1 : (b.max_output_tokens ?? undefined),
        temperature: b.temperature ?? undefined,
        topP: b.top_p ?? undefined,
        grammar: tools.grammar ?? constraint?.grammar ?? null,
        logprobs: logprobCount(b),
      },
      presetSampling(preset?.parameters),
    );
    runGeneration(res, deps, {
      outputCheck: warmup ? null : (constraint?.check ?? null),
      tools: warmup ? null : tools.options,
      input: {
        requestId: ctx.requestId,
        model,
        adapter: b.adapter,
        prompt: chatPromptWithTools(messages, tools),
        params,
        n: 1,
        priority: requestPriority(b, ctx.priorityHeader),
        maxTokensField: 'max_output_tokens',
      },
      stream: b.stream === true,
      encoder: responsesEncoder({
        model: b.model,
        instructions: b.instructions ?? null,
        maxOutputTokens: b.max_output_tokens ?? null,
        temperature: params.temperature,
        topP: params.topP,
        metadata: b.metadata ?? {},
        user: b.user,
        tools: b.tools ?? [],
        toolChoice: b.tool_choice ?? 'auto',
        parallelToolCalls: b.parallel_tool_calls ?? true,
        textFormat: b.text?.format ?? { type: 'text' },
        previousResponseId: socket ? (body.previous_response_id ?? null) : null,
        warmup,
      }),
    });
  };
}

