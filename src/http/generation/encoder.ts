/**
 * What a wire protocol contributes to a generation: how its response looks. The runner
 * (runner.ts) does everything else the same way for every protocol (policy, guardrails, sinks,
 * cancel, backpressure, metering, audit) and calls the encoder at each step of the sink lifecycle.
 * One encoder object per request (it may hold the response id, a created time, block indexes).
 */
import type { InferFluxError } from '../../errors.js';
import type { FinishReason, StartMeta, TokenLogprob, ToolCall, Usage } from '../../generation/contract.js';
import type { StreamEvent } from '../stream-writer.js';

/** Everything a non-streamed response is built from. */
export interface GenerationResult {
  meta: StartMeta;
  /** Per choice: its whole (filtered) text and why it ended. */
  texts: string[];
  reasons: FinishReason[];
  completionTokens: number[];
  usage: Usage;
  /** Per choice, its tokens' log probabilities when the request asked for them, else null. */
  logprobs: TokenLogprob[][] | null;
  /** Per choice, the tool calls it made (null: none; its text is the answer). */
  toolCalls: (ToolCall[] | null)[];
}

export interface GenerationEncoder {
  /** How the protocol streams: server-sent events or NDJSON lines. */
  readonly streamFormat: 'sse' | 'ndjson';
  /** Streamed: the events that open the response (a role delta, `message_start`...). */
  start(meta: StartMeta): StreamEvent[];
  /** `logprobs` when the request asked for them: one entry per token of this piece (its text may be empty). */
  text(choice: number, text: string, logprobs?: TokenLogprob[]): StreamEvent[];
  choiceEnd(choice: number, reason: FinishReason, completionTokens: number): StreamEvent[];
  /**
   * Streamed, for protocols that send calls whole: a choice's tool calls, at its end (the text
   * the model wrote before them came through `text`, so `content` is ''). Protocols without tools never get it.
   */
  toolCalls?(choice: number, calls: ToolCall[], content: string): StreamEvent[];
  /**
   * Streamed, for protocols that send calls as they are generated (then `toolCalls` is not
   * used): call `index` of a choice begins, with its id and function name...
   */
  toolCallStart?(choice: number, index: number, id: string, name: string): StreamEvent[];
  /** ...and then its arguments, a piece at a time (JSON text; the pieces concatenate). */
  toolCallArguments?(choice: number, index: number, piece: string): StreamEvent[];
  /** Streamed: the closing events (a usage chunk, `[DONE]`, `message_stop`, Ollama's `done` line). */
  end(usage: Usage): StreamEvent[];
  /** Not streamed: the whole response body. */
  body(result: GenerationResult): unknown;
  /** A mid-stream error, as this protocol's error event. */
  streamError(err: InferFluxError): StreamEvent;
}
