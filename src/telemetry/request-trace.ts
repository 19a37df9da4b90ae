/**
 * The spans of one HTTP request: a SERVER root span (`POST /v1/chat/completions`) whose parent is
 * the caller's W3C `traceparent` when it sent a valid one, and children for the stages:
 *
 *   inferflux.policy      authentication, RBAC, rate limits (the policy pipeline)
 *   inferflux.generation  the generation as the main thread sees it, from the hand-off to the
 *                         actors to the last token, with, as its children, the engine's own
 *                         measurements (taken in the engine worker thread, sent back with usage):
 *     inferflux.tokenize    the prompt to tokens (chat template, tokenizer pool), on the main thread's clock
 *     inferflux.queue_wait  admission until the first batch on an engine
 *     inferflux.prefill     evaluating the prompt (the part not reused from cache)
 *     inferflux.kv_transfer disaggregated mode: the prompt's KV handed from the prefill worker to
 *                           the decode worker, until its first decode step
 *     inferflux.decode      generating the completion
 *
 * Attributes follow the HTTP and GenAI semantic conventions (`gen_ai.request.model`,
 * `gen_ai.usage.input_tokens`, ...). Never a key or prompt text: the key id and tenant only.
 * Times are `performance.now()` values, which the SDK turns into wall-clock time.
 */
import { performance } from 'node:perf_hooks';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { GenerationTimings } from '../generation/contract.js';
import { parseTraceparent } from '../policy/traceparent.js';

export type Stage = 'queued' | 'started' | 'first_token' | 'ended';

export interface TraceFinish {
  method: string;
  route: string;
  status: number;
  requestId: string;
  model: string;
  keyId: string | undefined;
  tenant: string | undefined;
  tokensIn: number | null;
  tokensOut: number | null;
  errorCode: string | undefined;
}

export class RequestTrace {
  private readonly root: Span;
  private readonly ctx: Context;
  private policySpan: Span | null = null;
  private readonly marks = new Map<Stage, number>();
  private ended = false;
  private timings: GenerationTimings | undefined;
  private tokenizeMs = 0;
  /** The traceparent to hand on (audit line, response header): this trace, this root span. */
  readonly traceparent: string;
  readonly traceId: string;

  constructor(
    private readonly tracer: Tracer,
    method: string,
    incoming: string,
    startedAt: number,
  ) {
    const parsed = incoming === '' ? null : parseTraceparent(incoming);
    const parent = parsed
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: parsed.traceId, spanId: parsed.parentId, traceFlags: parseInt(parsed.flags, 16) & 1, isRemote: true })
      : ROOT_CONTEXT;
    this.root = tracer.startSpan(method.toUpperCase(), { kind: SpanKind.SERVER, startTime: startedAt, attributes: { 'http.request.method': method.toUpperCase() } }, parent);
    this.ctx = trace.setSpan(ROOT_CONTEXT, this.root);
    const sc = this.root.spanContext();
    this.traceId = sc.traceId;
    this.traceparent = `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
  }

  /** Whether this request's spans are recorded (a caller's unsampled traceparent says no). */
  get recording(): boolean {
    return this.root.isRecording();
  }

  policyStart(): void {
    this.policySpan = this.tracer.startSpan('inferflux.policy', { startTime: performance.now() }, this.ctx);
  }

  /** The policy pipeline let the request through (`ok`) or answered it itself. */
  policyEnd(ok: boolean): void {
    if (!this.policySpan) return;
    if (!ok) this.policySpan.setStatus({ code: SpanStatusCode.ERROR });
    this.policySpan.end(performance.now());
    this.policySpan = null;
  }

  /** A generation stage as the main thread sees it; `ended` brings the engine's measured timings. */
  mark(stage: Stage, timings?: GenerationTimings): void {
    if (!this.marks.has(stage)) this.marks.set(stage, performance.now());
    if (timings) this.timings = timings;
  }

  /** The prompt took `ms` to tokenize, right after the request was queued (`inferflux.tokenize`). */
  tokenized(ms: number): void {
    this.tokenizeMs = ms;
  }

  end(f: TraceFinish): void {
    if (this.ended) return;
    this.ended = true;
    const now = performance.now();
    this.policyEnd(f.status < 400);
    const root = this.root;
    root.updateName(`${f.method.toUpperCase()} ${f.route}`);
    root.setAttribute('http.route', f.route);
    root.setAttribute('http.response.status_code', f.status);
    root.setAttribute('inferflux.request_id', f.requestId);
    if (f.keyId) root.setAttribute('inferflux.key_id', f.keyId);
    if (f.tenant) root.setAttribute('inferflux.tenant', f.tenant);
    if (f.status >= 500 || f.errorCode) root.setStatus({ code: SpanStatusCode.ERROR, message: f.errorCode ?? String(f.status) });
    const queued = this.marks.get('queued');
    if (queued !== undefined) {
      const end = this.marks.get('ended') ?? now;
      const gen = this.tracer.startSpan('inferflux.generation', { startTime: queued }, this.ctx);
      const attrs = {
        'gen_ai.operation.name': f.route.includes('embed') ? 'embeddings' : f.route.includes('chat') || f.route.includes('messages') ? 'chat' : 'text_completion',
        'gen_ai.provider.name': 'inferflux',
        'gen_ai.request.model': f.model,
        'gen_ai.response.model': f.model,
      };
      gen.setAttributes(attrs);
      root.setAttributes(attrs);
      if (f.tokensIn !== null) {
        gen.setAttribute('gen_ai.usage.input_tokens', f.tokensIn);
        root.setAttribute('gen_ai.usage.input_tokens', f.tokensIn);
      }
      if (f.tokensOut !== null) {
        gen.setAttribute('gen_ai.usage.output_tokens', f.tokensOut);
        root.setAttribute('gen_ai.usage.output_tokens', f.tokensOut);
      }
      const genCtx = trace.setSpan(ROOT_CONTEXT, gen);
      // Tokenizing comes first; the engine's stages follow it.
      const tokenized = Math.min(end, queued + this.tokenizeMs);
      if (this.tokenizeMs > 0) this.tracer.startSpan('inferflux.tokenize', { startTime: queued }, genCtx).end(tokenized);
      this.stages(genCtx, tokenized, end, this.timings);
      if (f.status >= 400) gen.setStatus({ code: SpanStatusCode.ERROR });
      gen.end(end);
    }
    root.end(now);
  }

  /**
   * Queue wait, prefill and decode: the engine's measured durations laid back from the end (the
   * engine worker's clock differs from ours by the message hop, which lands in the gaps), or the
   * main thread's marks when the engine sent no timings (a cached response, an early failure).
   */
  private stages(ctx: Context, queued: number, end: number, t: GenerationTimings | undefined): void {
    let spans: [string, number, number][];
    if (t && t.queueMs + t.prefillMs + t.decodeMs > 0) {
      const decodeStart = Math.max(queued, end - t.decodeMs);
      const prefillStart = Math.max(queued, decodeStart - t.prefillMs);
      // A hand-off's transfer is the start of what the engine counts as decode.
      const transferEnd = t.kvTransferMs === undefined ? decodeStart : Math.min(end, decodeStart + t.kvTransferMs);
      spans = [
        ['inferflux.queue_wait', queued, Math.min(prefillStart, queued + t.queueMs)],
        ['inferflux.prefill', prefillStart, decodeStart],
        ...(t.kvTransferMs === undefined ? [] : [['inferflux.kv_transfer', decodeStart, transferEnd] as [string, number, number]]),
        ['inferflux.decode', transferEnd, end],
      ];
    } else {
      const started = this.marks.get('started');
      const first = this.marks.get('first_token');
      spans = [];
      if (started !== undefined) spans.push(['inferflux.queue_wait', queued, started]);
      if (started !== undefined && first !== undefined) spans.push(['inferflux.prefill', started, first], ['inferflux.decode', first, end]);
    }
    for (const [name, from, to] of spans) this.tracer.startSpan(name, { startTime: from }, ctx).end(Math.max(from, to));
  }
}
