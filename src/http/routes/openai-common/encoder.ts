/**
 * OpenAI's response shapes for chat and text completions: one JSON object, or SSE chunks ending in
 * `data: [DONE]`. The two routes differ only in their `Shape`.
 */
import { randomUUID } from 'node:crypto';
import { openAIErrorBody, type InferFluxError } from '../../../errors.js';
import type { FinishReason, StartMeta, TokenLogprob, ToolCall, Usage } from '../../../generation/contract.js';
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
  /** `logprobs`: the piece's tokens when the request asked for log probabilities, rendered by `renderLogprobs`. */
  textChoice(index: number, text: string, logprobs: unknown): Record<string, unknown>;
  /** `reason`: the engine's, or `tool_calls` for a choice that ended in calls. */
  endChoice(index: number, reason: WireFinishReason): Record<string, unknown>;
  /** A whole choice for the non-streaming response. */
  finalChoice(index: number, text: string, reason: WireFinishReason, logprobs: unknown, toolCalls: ToolCall[] | null): Record<string, unknown>;
  /** Streamed chunk choices for tool calls as they are generated (chat only): a call begins, then its argument pieces. */
  toolCallStart?(index: number, call: number, id: string, name: string): Record<string, unknown>;
  toolCallArguments?(index: number, call: number, piece: string): Record<string, unknown>;
  /**
   * The route's `logprobs` object for some tokens of a choice; `offset` is the characters of the
   * choice's text before them (legacy completions report text offsets).
   */
  renderLogprobs(tokens: TokenLogprob[], offset: number): unknown;
}

/** OpenAI's finish reasons: the engine's, plus `tool_calls`. */
export type WireFinishReason = FinishReason | 'tool_calls';

const bytesOf = (s: string): number[] => [...Buffer.from(s, 'utf8')];

/** Chat completions' `logprobs.content`. */
export function chatLogprobs(tokens: TokenLogprob[]): unknown {
  return {
    content: tokens.map((t) => ({
      token: t.token,
      logprob: t.logprob,
      bytes: bytesOf(t.token),
      top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytesOf(a.token) })),
    })),
  };
}

/** Legacy completions' `logprobs`: parallel arrays, alternatives as a token -> logprob map. */
export function completionLogprobs(tokens: TokenLogprob[], offset: number): unknown {
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.token.length;
  }
  return {
    tokens: tokens.map((t) => t.token),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((t) => Object.fromEntries(t.top.map((a) => [a.token, a.logprob]))),
    text_offset: textOffset,
  };
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
  /** Characters streamed per choice so far (text offsets of legacy completions' logprobs). */
  const streamed: number[] = Array.from({ length: opts.n }, () => 0);
  /** Choices that ended in tool calls: their finish reason is `tool_calls`. */
  const called = new Set<number>();
  const wireReason = (choice: number, reason: FinishReason): WireFinishReason => (called.has(choice) && reason === 'stop' ? 'tool_calls' : reason);
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
    text(choice, text, logprobs) {
      const lp = logprobs ? shape.renderLogprobs(logprobs, streamed[choice]!) : null;
      streamed[choice]! += text.length;
      return [chunk([shape.textChoice(choice, text, lp)])];
    },
    choiceEnd(choice, reason) {
      reasons[choice] = reason;
      return [chunk([shape.endChoice(choice, wireReason(choice, reason))])];
    },
    ...(shape.toolCallStart && shape.toolCallArguments
      ? {
          toolCallStart(choice: number, index: number, callId: string, name: string) {
            called.add(choice);
            return [chunk([shape.toolCallStart!(choice, index, callId, name)])];
          },
          toolCallArguments: (choice: number, index: number, piece: string) => [chunk([shape.toolCallArguments!(choice, index, piece)])],
        }
      : {}),
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
        choices: r.texts.map((t, i) => {
          const calls = r.toolCalls[i] ?? null;
          if (calls) called.add(i);
          return shape.finalChoice(i, t, wireReason(i, r.reasons[i]!), r.logprobs ? shape.renderLogprobs(r.logprobs[i]!, 0) : null, calls);
        }),
        usage: usageBody(r.usage),
        ...opts.extras?.(r.usage, r.reasons),
      };
    },
    // OpenAI's SDK raises an `APIError` for a data event carrying `error`.
    streamError: (err: InferFluxError) => ({ data: openAIErrorBody(err) }),
  };
}
