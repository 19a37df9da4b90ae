/**
 * Anthropic's Messages response shapes: one `message` object, or the SSE event sequence its SDKs
 * read: `message_start`, then per content block `content_block_start` (the first followed by
 * `ping`), its deltas (`text_delta` for text, `input_json_delta` pieces of a `tool_use` block's
 * input), `content_block_stop`; then `message_delta` (stop reason, output usage), `message_stop`.
 * Blocks open as content arrives, so an answer that is only tool calls has no empty text block.
 * A mid-stream failure is an `error` event in Anthropic's error shape.
 */
import { randomUUID } from 'node:crypto';
import { errorBody, type InferFluxError } from '../../../errors.js';
import type { FinishReason, ToolCall, Usage } from '../../../generation/contract.js';
import type { GenerationEncoder, GenerationResult } from '../../generation/encoder.js';
import { argumentPieces } from '../../generation/tool-plan.js';
import type { StreamEvent } from '../../stream-writer.js';

/** `end_turn` (the model stopped), `tool_use` (it called), `max_tokens`, or `stop_sequence` (with the sequence). */
export function stopReason(reason: FinishReason, stopSequence: string | null | undefined, called = false): string {
  if (reason === 'length') return 'max_tokens';
  if (called) return 'tool_use';
  return stopSequence ? 'stop_sequence' : 'end_turn';
}

/** Anthropic's ids for calls: `toolu_` and the call's own random part. */
const toolUseId = (c: ToolCall) => 'toolu_' + c.id.replace(/^call_/, '');

function toolUseBlock(c: ToolCall, input: unknown) {
  return { type: 'tool_use', id: toolUseId(c), name: c.name, input };
}
/**
 * Anthropic counts cache reads apart from `input_tokens` (their sum is the prompt); KV reused by
 * the engine is the nearest thing to its prompt cache.
 */
function inputUsage(promptTokens: number, cachedTokens: number) {
  return { input_tokens: promptTokens - cachedTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: cachedTokens };
}

const ev = (type: string, fields: Record<string, unknown> = {}): StreamEvent => ({ event: type, data: { type, ...fields } });

export function anthropicEncoder(model: string): GenerationEncoder {
  const id = 'msg_' + randomUUID().replaceAll('-', '');
  let reason: FinishReason = 'stop';
  let promptTokens = 0;
  /** Index of the last block opened (-1: none yet), whether it is an open text block, whether calls came. */
  let index = -1;
  let textOpen = false;
  let called = false;
  const message = (fields: Record<string, unknown>) => ({ id, type: 'message', role: 'assistant', model, ...fields });
  const open = (block: Record<string, unknown>): StreamEvent[] => {
    index++;
    const events = [ev('content_block_start', { index, content_block: block })];
    if (index === 0) events.push(ev('ping'));
    return events;
  };
  const text = (t: string): StreamEvent[] => {
    const events = textOpen ? [] : open({ type: 'text', text: '' });
    textOpen = true;
    events.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: t } }));
    return events;
  };
  const closeText = (): StreamEvent[] => {
    if (!textOpen) return [];
    textOpen = false;
    return [ev('content_block_stop', { index })];
  };
  return {
    streamFormat: 'sse',
    start(meta) {
      promptTokens = meta.promptTokens;
      // Cached prompt tokens are known only at the end; the start reports the whole prompt as input.
      return [ev('message_start', { message: message({ content: [], stop_reason: null, stop_sequence: null, usage: { ...inputUsage(promptTokens, 0), output_tokens: 0 } }) })];
    },
    text: (_choice, t) => text(t),
    toolCalls(_choice, calls, content) {
      called = true;
      const events = content === '' ? [] : text(content);
      events.push(...closeText());
      for (const c of calls) {
        events.push(...open(toolUseBlock(c, {})));
        for (const piece of argumentPieces(c.arguments)) events.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } }));
        events.push(ev('content_block_stop', { index }));
      }
      return events;
    },
    choiceEnd(_choice, r) {
      reason = r;
      // An answer with no content at all still has its (empty) text block, as Anthropic sends.
      if (index < 0) return [...open({ type: 'text', text: '' }), ev('content_block_stop', { index })];
      return closeText();
    },
    end: (usage: Usage) => [
      ev('message_delta', {
        delta: { stop_reason: stopReason(reason, usage.stopSequence, called), stop_sequence: usage.stopSequence ?? null },
        usage: { ...inputUsage(usage.promptTokens, usage.cachedTokens), output_tokens: usage.completionTokens },
      }),
      ev('message_stop'),
    ],
    body(r: GenerationResult) {
      const calls = r.toolCalls[0] ?? null;
      const t = r.texts[0] ?? '';
      const content: unknown[] = t !== '' || !calls ? [{ type: 'text', text: t }] : [];
      for (const c of calls ?? []) content.push(toolUseBlock(c, JSON.parse(c.arguments)));
      return message({
        content,
        stop_reason: stopReason(r.reasons[0] ?? 'stop', r.usage.stopSequence, calls !== null),
        stop_sequence: r.usage.stopSequence ?? null,
        usage: { ...inputUsage(r.usage.promptTokens, r.usage.cachedTokens), output_tokens: r.usage.completionTokens },
      });
    },
    streamError: (err: InferFluxError) => ({ event: 'error', data: errorBody('anthropic', err) }),
  };
}
