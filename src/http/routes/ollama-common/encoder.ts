/**
 * Ollama's response shapes for `/api/chat` and `/api/generate`: NDJSON lines while streaming (one
 * object per text piece with `done: false`, then a final `done: true` object with the statistics),
 * or that final object with the whole text when `stream: false`. Durations are nanoseconds
 * (Ollama's convention): `total_duration` from the request's arrival, `prompt_eval_duration` and
 * `eval_duration` as the engine measured prefill and decode. `load_duration` is 0: models are
 * loaded at start-up, never per request. Tool calls (chat) come as `message.tool_calls` with the
 * arguments as a JSON object, on their own line while streaming; `done_reason` stays `stop`, as
 * Ollama reports it.
 */
import { performance } from 'node:perf_hooks';
import type { InferFluxError } from '../../../errors.js';
import type { FinishReason, ToolCall, Usage } from '../../../generation/contract.js';
import type { GenerationEncoder, GenerationResult } from '../../generation/encoder.js';
import type { StreamEvent } from '../../stream-writer.js';

export type OllamaKind = 'chat' | 'generate';

const NS_PER_MS = 1_000_000;

/** Ollama's `done_reason`: it reports `stop` and `length` (plus `load`/`unload` for empty prompts). */
function doneReason(reason: FinishReason): string {
  return reason === 'length' ? 'length' : 'stop';
}

/** Calls in Ollama's shape: the arguments are an object, not JSON text. */
export function ollamaToolCalls(calls: ToolCall[]): { function: { name: string; arguments: Record<string, unknown> } }[] {
  return calls.map((c) => ({ function: { name: c.name, arguments: JSON.parse(c.arguments) as Record<string, unknown> } }));
}

/** The text of one piece (and a chat turn's calls), in the kind's field. */
function content(kind: OllamaKind, text: string, calls: ToolCall[] | null = null): Record<string, unknown> {
  if (kind !== 'chat') return { response: text };
  return { message: calls ? { role: 'assistant', content: text, tool_calls: ollamaToolCalls(calls) } : { role: 'assistant', content: text } };
}

export function ollamaStats(usage: Usage, startedAt: number): Record<string, number> {
  const t = usage.timings ?? { queueMs: 0, prefillMs: 0, decodeMs: 0 };
  return {
    total_duration: Math.round((performance.now() - startedAt) * NS_PER_MS),
    load_duration: 0,
    prompt_eval_count: usage.promptTokens,
    prompt_eval_duration: Math.round(t.prefillMs * NS_PER_MS),
    eval_count: usage.completionTokens,
    eval_duration: Math.round(t.decodeMs * NS_PER_MS),
  };
}

/**
 * `model` is the name as the client sent it (Ollama echoes it); `startedAt` is the request's
 * arrival (`performance.now()`), for `total_duration`.
 */
export function ollamaEncoder(kind: OllamaKind, model: string, startedAt: number): GenerationEncoder {
  let reason: FinishReason = 'stop';
  const line = (fields: Record<string, unknown>): StreamEvent => ({ data: { model, created_at: new Date().toISOString(), ...fields } });
  return {
    streamFormat: 'ndjson',
    start: () => [],
    text: (_choice, text) => [line({ ...content(kind, text), done: false })],
    toolCalls: (_choice, calls, text) => [line({ ...content(kind, text, calls), done: false })],
    choiceEnd(_choice, r) {
      reason = r;
      return [];
    },
    end: (usage) => [line({ ...content(kind, ''), done: true, done_reason: doneReason(reason), ...ollamaStats(usage, startedAt) })],
    body: (r: GenerationResult) =>
      line({ ...content(kind, r.texts[0] ?? '', r.toolCalls[0] ?? null), done: true, done_reason: doneReason(r.reasons[0] ?? 'stop'), ...ollamaStats(r.usage, startedAt) })
        .data,
    // The ollama client throws an Error with `error` for a line carrying it.
    streamError: (err: InferFluxError) => ({ data: { error: err.message } }),
  };
}
