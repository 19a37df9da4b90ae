/**
 * Anthropic's Messages response shapes: one `message` object, or the SSE event sequence its SDKs
 * read: `message_start`, `content_block_start`, `ping`, `content_block_delta` (`text_delta`)*,
 * `content_block_stop`, `message_delta` (stop reason, output usage), `message_stop`; a
 * mid-stream failure is an `error` event in Anthropic's error shape.
 */
import { randomUUID } from 'node:crypto';
import { errorBody, type InferFluxError } from '../../../errors.js';
import type { FinishReason, Usage } from '../../../generation/contract.js';
import type { GenerationEncoder, GenerationResult } from '../../generation/encoder.js';
import type { StreamEvent } from '../../stream-writer.js';

/** `end_turn` (the model stopped), `max_tokens`, or `stop_sequence` (with the sequence). */
export function stopReason(reason: FinishReason, stopSequence: string | null | undefined): string {
  if (reason === 'length') return 'max_tokens';
  return stopSequence ? 'stop_sequence' : 'end_turn';
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
  const message = (fields: Record<string, unknown>) => ({ id, type: 'message', role: 'assistant', model, ...fields });
  return {
    streamFormat: 'sse',
    start(meta) {
      promptTokens = meta.promptTokens;
      return [
        // Cached prompt tokens are known only at the end; the start reports the whole prompt as input.
        ev('message_start', { message: message({ content: [], stop_reason: null, stop_sequence: null, usage: { ...inputUsage(promptTokens, 0), output_tokens: 0 } }) }),
        ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
        ev('ping'),
      ];
    },
    text: (_choice, text) => [ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } })],
    choiceEnd(_choice, r) {
      reason = r;
      return [ev('content_block_stop', { index: 0 })];
    },
    end: (usage: Usage) => [
      ev('message_delta', {
        delta: { stop_reason: stopReason(reason, usage.stopSequence), stop_sequence: usage.stopSequence ?? null },
        usage: { ...inputUsage(usage.promptTokens, usage.cachedTokens), output_tokens: usage.completionTokens },
      }),
      ev('message_stop'),
    ],
    body: (r: GenerationResult) =>
      message({
        content: [{ type: 'text', text: r.texts[0] ?? '' }],
        stop_reason: stopReason(r.reasons[0] ?? 'stop', r.usage.stopSequence),
        stop_sequence: r.usage.stopSequence ?? null,
        usage: { ...inputUsage(r.usage.promptTokens, r.usage.cachedTokens), output_tokens: r.usage.completionTokens },
      }),
    streamError: (err: InferFluxError) => ({ event: 'error', data: errorBody('anthropic', err) }),
  };
}
