/**
 * OpenAI Responses shapes (stateless): one `response` object, or its SSE event sequence, every
 * event numbered by `sequence_number`: `response.created`, `response.in_progress`, then per output
 * item: a message (`response.output_item.added`, `response.content_part.added`,
 * `response.output_text.delta`*, `response.output_text.done`, `response.content_part.done`,
 * `response.output_item.done`) or a function call (`response.output_item.added`,
 * `response.function_call_arguments.delta`*, `response.function_call_arguments.done`,
 * `response.output_item.done`); then `response.completed` (or `response.incomplete` when
 * `max_output_tokens` cut the answer, as OpenAI does). Items open as output arrives, so an answer
 * that is only calls has no empty message.
 */
import { randomUUID } from 'node:crypto';
import { openAIErrorBody, type InferFluxError } from '../../../errors.js';
import type { FinishReason, StartMeta, TokenLogprob, ToolCall, Usage } from '../../../generation/contract.js';
import { chatLogprobs } from '../openai-common/encoder.js';
import type { GenerationEncoder, GenerationResult } from '../../generation/encoder.js';
import { argumentPieces } from '../../generation/tool-plan.js';
import type { StreamEvent } from '../../stream-writer.js';

/** What the request said, echoed in every response object as OpenAI does. */
export interface EchoedParams {
  model: string | undefined;
  instructions: string | null;
  maxOutputTokens: number | null;
  temperature: number;
  topP: number;
  metadata: Record<string, string>;
  user: string | undefined;
  tools: unknown[];
  toolChoice: unknown;
  parallelToolCalls: boolean;
  /** `text.format` as asked (a schema's name, schema and strict flag echoed back). */
  textFormat: unknown;
  /** The response a WebSocket turn continued, or null. */
  previousResponseId: string | null;
  /** A WebSocket warm-up turn (`generate: false`): created, then completed with no output. */
  warmup?: boolean;
}

const hex = () => randomUUID().replaceAll('-', '');

function usageBody(u: Usage) {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/** Token log probabilities as Responses `output_text.logprobs` entries (chat's `logprobs.content` shape). */
function logprobEntries(tokens: TokenLogprob[] | undefined): unknown[] {
  return tokens && tokens.length > 0 ? (chatLogprobs(tokens) as { content: unknown[] }).content : [];
}

export function responsesEncoder(p: EchoedParams): GenerationEncoder {
  const id = 'resp_' + hex();
  const itemId = 'msg_' + hex();
  let seq = 0;
  let meta: StartMeta | undefined;
  let text = '';
  let reason: FinishReason = 'stop';
  /** Finished output items, in order; the message's index while it is open (-1: not open). */
  const output: Record<string, unknown>[] = [];
  let messageIndex = -1;

  /** The message's token log probabilities so far (empty unless the request asked for them). */
  let lps: unknown[] = [];
  const part = (t: string, l: unknown[]) => ({ type: 'output_text', text: t, annotations: [], logprobs: l });
  const item = (status: string, content: unknown[]) => ({ id: itemId, type: 'message', status, role: 'assistant', content });
  const callItem = (c: ToolCall, status: string, args: string) => ({ id: 'fc_' + c.id.replace(/^call_/, ''), type: 'function_call', status, arguments: args, call_id: c.id, name: c.name });
  const response = (m: StartMeta, status: string, fields: Record<string, unknown>) => ({
    id,
    object: 'response',
    created_at: m.created,
    status,
    background: false,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: p.instructions,
    max_output_tokens: p.maxOutputTokens,
    model: m.model,
    output: [],
    parallel_tool_calls: p.parallelToolCalls,
    previous_response_id: p.previousResponseId,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: p.temperature,
    text: { format: p.textFormat },
    tool_choice: p.toolChoice,
    tools: p.tools,
    top_p: p.topP,
    truncation: 'disabled',
    usage: null,
    user: p.user ?? null,
    metadata: p.metadata,
    ...fields,
  });
  const ev = (type: string, fields: Record<string, unknown>): StreamEvent => ({ event: type, data: { type, sequence_number: seq++, ...fields } });
  const at = () => ({ item_id: itemId, output_index: messageIndex, content_index: 0 });
  const statusOf = (r: FinishReason) => (r === 'length' ? 'incomplete' : 'completed');

  const openMessage = (): StreamEvent[] => {
    messageIndex = output.length;
    return [ev('response.output_item.added', { output_index: messageIndex, item: item('in_progress', []) }), ev('response.content_part.added', { ...at(), part: part('', []) })];
  };
  const addText = (t: string, tokens?: TokenLogprob[]): StreamEvent[] => {
    const events = messageIndex < 0 ? openMessage() : [];
    text += t;
    const l = logprobEntries(tokens);
    lps.push(...l);
    events.push(ev('response.output_text.delta', { ...at(), delta: t, logprobs: l }));
    return events;
  };
  const closeMessage = (): StreamEvent[] => {
    if (messageIndex < 0) return [];
    const done = item('completed', [part(text, lps)]);
    const events = [
      ev('response.output_text.done', { ...at(), text, logprobs: lps }),
      ev('response.content_part.done', { ...at(), part: part(text, lps) }),
      ev('response.output_item.done', { output_index: messageIndex, item: done }),
    ];
    output.push(done);
    messageIndex = -1;
    lps = [];
    return events;
  };

  return {
    streamFormat: 'sse',
    start(m) {
      meta = m;
      const opening = response(m, 'in_progress', {});
      return [ev('response.created', { response: opening }), ev('response.in_progress', { response: opening })];
    },
    text: (_choice, t, tokens) => (p.warmup ? [] : addText(t, tokens)),
    toolCalls(_choice, calls, content) {
      if (p.warmup) return [];
      const events = content === '' ? [] : addText(content);
      events.push(...closeMessage());
      for (const c of calls) {
        const index = output.length;
        const added = callItem(c, 'in_progress', '');
        events.push(ev('response.output_item.added', { output_index: index, item: added }));
        for (const delta of argumentPieces(c.arguments)) events.push(ev('response.function_call_arguments.delta', { item_id: added.id, output_index: index, delta }));
        events.push(ev('response.function_call_arguments.done', { item_id: added.id, output_index: index, name: c.name, arguments: c.arguments }));
        const done = callItem(c, 'completed', c.arguments);
        events.push(ev('response.output_item.done', { output_index: index, item: done }));
        output.push(done);
      }
      return events;
    },
    choiceEnd(_choice, r) {
      if (p.warmup) return [];
      reason = r;
      // An answer with no output at all is still one (empty) message, as OpenAI sends.
      return output.length === 0 && messageIndex < 0 ? [...openMessage(), ...closeMessage()] : closeMessage();
    },
    end(usage) {
      // The warm-up's one token was only there to prefill the prompt: no output, none counted.
      if (p.warmup) return [ev('response.completed', { response: response(meta!, 'completed', { output, usage: usageBody({ ...usage, completionTokens: 0 }) }) })];
      const status = statusOf(reason);
      return [ev(`response.${status}`, { response: response(meta!, status, { output, usage: usageBody(usage) }) })];
    },
    body(r: GenerationResult) {
      const calls = r.toolCalls[0] ?? null;
      const t = r.texts[0] ?? '';
      const items: unknown[] = t !== '' || !calls ? [item('completed', [part(t, logprobEntries(r.logprobs?.[0]))])] : [];
      for (const c of calls ?? []) items.push(callItem(c, 'completed', c.arguments));
      return response(r.meta, statusOf(r.reasons[0] ?? 'stop'), { output: items, usage: usageBody(r.usage) });
    },
    // OpenAI's `error` event fields, plus the `error` envelope on which the SDK raises an APIError.
    streamError(err: InferFluxError) {
      const body = openAIErrorBody(err);
      return ev('error', { code: err.code, message: err.message, param: err.param, ...body });
    },
  };
}
