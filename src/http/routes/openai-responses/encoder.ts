/**
 * OpenAI Responses shapes (stateless): one `response` object, or its SSE event sequence, every
 * event numbered by `sequence_number`: `response.created`, `response.in_progress`,
 * `response.output_item.added`, `response.content_part.added`, `response.output_text.delta`*,
 * `response.output_text.done`, `response.content_part.done`, `response.output_item.done`, then
 * `response.completed` (or `response.incomplete` when `max_output_tokens` cut the text, as OpenAI does).
 */
import { randomUUID } from 'node:crypto';
import { openAIErrorBody, type InferFluxError } from '../../../errors.js';
import type { FinishReason, StartMeta, Usage } from '../../../generation/contract.js';
import type { GenerationEncoder, GenerationResult } from '../../generation/encoder.js';
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

export function responsesEncoder(p: EchoedParams): GenerationEncoder {
  const id = 'resp_' + hex();
  const itemId = 'msg_' + hex();
  let seq = 0;
  let meta: StartMeta | undefined;
  let text = '';
  let reason: FinishReason = 'stop';

  const part = (t: string) => ({ type: 'output_text', text: t, annotations: [], logprobs: [] });
  const item = (status: string, content: unknown[]) => ({ id: itemId, type: 'message', status, role: 'assistant', content });
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
    parallel_tool_calls: false,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: p.temperature,
    text: { format: { type: 'text' } },
    tool_choice: 'none',
    tools: [],
    top_p: p.topP,
    truncation: 'disabled',
    usage: null,
    user: p.user ?? null,
    metadata: p.metadata,
    ...fields,
  });
  const ev = (type: string, fields: Record<string, unknown>): StreamEvent => ({ event: type, data: { type, sequence_number: seq++, ...fields } });
  const at = { item_id: itemId, output_index: 0, content_index: 0 };
  const statusOf = (r: FinishReason) => (r === 'length' ? 'incomplete' : 'completed');

  return {
    streamFormat: 'sse',
    start(m) {
      meta = m;
      const opening = response(m, 'in_progress', {});
      return [
        ev('response.created', { response: opening }),
        ev('response.in_progress', { response: opening }),
        ev('response.output_item.added', { output_index: 0, item: item('in_progress', []) }),
        ev('response.content_part.added', { ...at, part: part('') }),
      ];
    },
    text(_choice, t) {
      text += t;
      return [ev('response.output_text.delta', { ...at, delta: t, logprobs: [] })];
    },
    choiceEnd(_choice, r) {
      reason = r;
      return [
        ev('response.output_text.done', { ...at, text, logprobs: [] }),
        ev('response.content_part.done', { ...at, part: part(text) }),
        ev('response.output_item.done', { output_index: 0, item: item('completed', [part(text)]) }),
      ];
    },
    end(usage) {
      const status = statusOf(reason);
      const final = response(meta!, status, { output: [item('completed', [part(text)])], usage: usageBody(usage) });
      return [ev(`response.${status}`, { response: final })];
    },
    body: (r: GenerationResult) =>
      response(r.meta, statusOf(r.reasons[0] ?? 'stop'), { output: [item('completed', [part(r.texts[0] ?? '')])], usage: usageBody(r.usage) }),
    // OpenAI's `error` event fields, plus the `error` envelope on which the SDK raises an APIError.
    streamError(err: InferFluxError) {
      const body = openAIErrorBody(err);
      return ev('error', { code: err.code, message: err.message, param: err.param, ...body });
    },
  };
}
