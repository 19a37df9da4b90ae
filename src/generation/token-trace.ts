/**
 * Token traces for `/debug`: when each generated token of a request reached the main thread,
 * recorded by its `Run` and kept for the last finished requests in a bounded log. They answer
 * "why was this request slow": queueing, prefill, or stalls between tokens (a long prompt
 * arriving on the same worker, a preemption, a hand-off), with the engine's own split beside.
 *
 * Times and counts only: no token id, no text (token ids would spell the response out).
 */
import { performance } from 'node:perf_hooks';
import { RingBuffer } from '../runtime/ring-buffer.js';
import type { GenerationTimings, TokenTraceDetail, TokenTraceSummary } from './contract.js';

/** Token times a request keeps (all choices together); beyond this the trace says `truncated`. */
export const MAX_TRACE_TOKENS = 8192;
/** Finished requests whose traces are kept (the oldest is dropped first). */
export const TRACE_LOG_CAPACITY = 64;

const round2 = (ms: number): number => Math.round(ms * 100) / 100;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Collects one request's token times as its frames arrive. */
export class TokenTraceRecorder {
  private readonly startedAt = performance.now();
  private readonly times: number[][] = [];
  private kept = 0;
  private truncated = false;

  /** `tokens` generated tokens of `choice` reached the main thread now (a frame may carry several). */
  tokens(choice: number, tokens: number): void {
    if (tokens <= 0) return;
    const at = round2(performance.now() - this.startedAt);
    const list = (this.times[choice] ??= []);
    for (let i = 0; i < tokens; i++) {
      if (this.kept >= MAX_TRACE_TOKENS) {
        this.truncated = true;
        return;
      }
      list.push(at);
      this.kept++;
    }
  }

  finish(meta: {
    requestId: string;
    model: string;
    adapter: string | null;
    route: string | undefined;
    keyId: string | undefined;
    tenant: string | undefined;
    status: number;
    outcome: string;
    promptTokens: number;
    cachedTokens: number;
    completionTokens: number;
    finishReasons: string[];
    tokenizeMs: number;
    timings: GenerationTimings;
  }): TokenTraceDetail {
    const latency = performance.now() - this.startedAt;
    const gaps: number[] = [];
    let first = Infinity;
    let last = -Infinity;
    let counted = 0;
    for (const list of this.times) {
      if (!list || list.length === 0) continue;
      first = Math.min(first, list[0]!);
      last = Math.max(last, list[list.length - 1]!);
      counted += list.length;
      for (let i = 1; i < list.length; i++) gaps.push(list[i]! - list[i - 1]!);
    }
    gaps.sort((a, b) => a - b);
    const t = meta.timings;
    return {
      request_id: meta.requestId,
      at: new Date(performance.timeOrigin + this.startedAt).toISOString(),
      model: meta.model,
      adapter: meta.adapter,
      route: meta.route ?? null,
      key_id: meta.keyId ?? null,
      tenant: meta.tenant ?? null,
      status: meta.status,
      outcome: meta.outcome,
      prompt_tokens: meta.promptTokens,
      cached_tokens: meta.cachedTokens,
      completion_tokens: meta.completionTokens,
      finish_reasons: meta.finishReasons,
      latency_ms: round2(latency),
      ttft_ms: Number.isFinite(first) ? first : null,
      timings_ms: {
        tokenize: round2(meta.tokenizeMs),
        queue: round2(t.queueMs),
        prefill: round2(t.prefillMs),
        decode: round2(t.decodeMs),
        kv_transfer: t.kvTransferMs === undefined ? null : round2(t.kvTransferMs),
      },
      inter_token_ms:
        gaps.length === 0
          ? null
          : { p50: round2(quantile(gaps, 0.5)), p90: round2(quantile(gaps, 0.9)), p99: round2(quantile(gaps, 0.99)), max: round2(gaps[gaps.length - 1]!) },
      decode_tokens_per_s: counted >= 2 && last > first ? round2(((counted - 1) * 1000) / (last - first)) : null,
      truncated: this.truncated,
      choices: meta.finishReasons.map((reason, index) => ({ index, finish_reason: reason, token_times_ms: this.times[index] ?? [] })),
    };
  }
}

/** The last finished requests' traces, newest first; bounded in count (and so in memory). */
export class TokenTraceLog {
  private readonly traces: RingBuffer<TokenTraceDetail>;

  constructor(capacity = TRACE_LOG_CAPACITY) {
    this.traces = new RingBuffer(capacity);
  }

  add(trace: TokenTraceDetail): void {
    this.traces.push(trace);
  }

  /** Summaries, newest first. */
  list(): TokenTraceSummary[] {
    return this.traces.newestFirst().map(({ choices: _choices, ...summary }) => summary);
  }

  get(requestId: string): TokenTraceDetail | undefined {
    return this.traces.newestFirst().find((t) => t.request_id === requestId);
  }
}
