/**
 * OpenAI's response shapes for chat and text completions: one JSON object, or SSE chunks ending in
 * `data: [DONE]`. The two routes differ only in their `Shape`.
 */
import { randomUUID } from 'node:crypto';
import { openAIErrorBody, type InferFluxError } from '../../../errors.js';
import type { FinishReason, StartMeta, Usage } from '../../../generation/contract.js';
import type { GenerationEncoder, GenerationResult } from '../../generation/encoder.js';
import type { StreamEvent } from '../../stream-writer.js';

/** Reported as `system_fingerprint`: identifies the serving stack, as OpenAI's does. */
export const SYSTEM_FINGERPRINT = 'fp_inferflux';

export interface Shape {
  object: string;
  chunkObject: string;
  idPrefix: string;
  /** Chat sends `delta: {role: 'assistant', content: ''}` first; completions send nothing. */
  startChoice?(index: number): Record<string, unknown>;
  textChoice(index: number, text: string): Record<string, unknown>;
  endChoice(index: number, reason: FinishReason): Record<string, unknown>;
  /** A whole choice for the non-streaming response. */
  finalChoice(index: number, text: string, reason: FinishReason): Record<string, unknown>;
}

export function usageBody(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    // OpenAI's field for prompt tokens served from cache (here: KV reused by the engine).
    prompt_tokens_details: { cached_tokens: u.cachedTokens ?? 0 },
  };
}

/**
 * Fields a dialect adds to the finished response (LM Studio's `stats`, `model_info`): on the
 * whole body, and when streamed, on a last empty-choices chunk before `[DONE]` (the usage chunk
 * when `include_usage` asked for one).
 */
/** OpenAI itself, or LM Studio's `/api/v0` aliases (OpenAI shapes plus `stats`, `model_info`, `runtime`). */
export type Dialect = 'openai' | 'lmstudio';

export type FinalExtras = (usage: Usage, reasons: FinishReason[]) => Record<string, unknown>;

export function openAIEncoder(shape: Shape, opts: { n: number; includeUsage: boolean; extras?: FinalExtras }): GenerationEncoder {
  const id = shape.idPrefix + randomUUID().replaceAll('-', '');
  let meta: StartMeta | undefined;
  const reasons: FinishReason[] = Array.from({ length: opts.n }, () => 'stop');
  const chunk = (choices: Record<string, unknown>[], extra: Record<string, unknown> = {}): StreamEvent => ({
    data: {
      id,
      object: shape.chunkObject,
      created: meta!.created,
      model: meta!.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices,
      ...(opts.includeUsage ? { usage: null } : {}),
      ...extra,
    },
  });
  return {
    streamFormat: 'sse',
    start(m) {
      meta = m;
      const events: StreamEvent[] = [];
      if (shape.startChoice) for (let i = 0; i < opts.n; i++) events.push(chunk([shape.startChoice(i)]));
      return events;
    },
    text: (choice, text) => [chunk([shape.textChoice(choice, text)])],
    choiceEnd(choice, reason) {
      reasons[choice] = reason;
      return [chunk([shape.endChoice(choice, reason)])];
    },
    end(usage) {
      const done: StreamEvent = { data: '[DONE]' };
      const extra = opts.extras?.(usage, reasons) ?? {};
      if (opts.includeUsage) return [chunk([], { usage: usageBody(usage), ...extra }), done];
      return opts.extras ? [chunk([], extra), done] : [done];
    },
    body(r: GenerationResult) {
      return {
        id,
        object: shape.object,
        created: r.meta.created,
        model: r.meta.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: r.texts.map((t, i) => shape.finalChoice(i, t, r.reasons[i]!)),
        usage: usageBody(r.usage),
        ...opts.extras?.(r.usage, r.reasons),
      };
    },
    // OpenAI's SDK raises an `APIError` for a data event carrying `error`.
    streamError: (err: InferFluxError) => ({ data: openAIErrorBody(err) }),
  };
}
