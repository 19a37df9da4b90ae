/**
 * One request in flight: its choices, their ports, and the sink's lifecycle. Admits each choice to
 * the scheduler with its own MessagePort and turns the frames that come back on those ports into
 * sink calls (in the contract's order), metrics and one audit line.
 *
 * The sink starts (`onStart`) when the first choice starts on an engine, not at admission: a
 * request the scheduler turns away (429 queue_full) or a failure before any engine took it is then
 * an error with its real status, never a 200 stream that ends in an error event.
 */
import { createHash } from 'node:crypto';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { InferFluxError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { ActorSystem } from '../actors/system.js';
import { T, postFrame, unpack, type AdapterRef, type AdmitBody, type Envelope, type OnRequestPortFromEngine, type RequestId } from '../actors/protocol.js';
import { blockSalt, prefixBlocks } from '../runtime/prefix/block-hash.js';
import type { EngineSampling } from '../runtime/sampling.js';
import type { FinishReason, GenerateInput, GenerationHandle, GenerationTimings, RunningGeneration, StartMeta, TokenSink, TokenTraceDetail } from './contract.js';
import { TokenTraceRecorder } from './token-trace.js';

/** A finished deterministic response, kept for exact-match reuse (`runtime.response_cache`). */
export interface FinishedResponse {
  promptTokens: number;
  texts: string[];
  reasons: FinishReason[];
  completion: number[];
  stopSequence: string | null;
}

const now = (): number => performance.timeOrigin + performance.now();

export class Run {
  model = 'unknown';
  /** The model's backend (`cpu`, `mps`), the `backend` label of its token counters. */
  backend: 'cpu' | 'mps' = 'cpu';
  /** How long the prompt took to tokenize (the gateway measures it; StartMeta carries it to the trace). */
  tokenizeMs = 0;
  /** Whose KV this run may reuse (the gateway decides: cache isolation and the request's salt); '' = shared. */
  cacheSalt = '';
  /** The LoRA adapter the request runs under (id as clients name it, and what engines apply), or null. */
  adapter: { id: string; ref: AdapterRef } | null = null;
  cancelled = false;
  onFinish: () => void = () => undefined;
  /** Set for cacheable requests: receives the finished response (not on cancel or error). */
  onComplete: ((r: FinishedResponse) => void) | null = null;
  /** Receives the request's token trace once it has ended, however it ended (`/debug`). */
  onTrace: ((t: TokenTraceDetail) => void) | null = null;
  private readonly trace = new TokenTraceRecorder();
  private completionPerChoice: number[] = [];
  readonly handle: GenerationHandle;
  private readonly startedAt = now();
  private ended = false;
  private ports: MessagePort[] = [];
  private ids: RequestId[] = [];
  private open = 0;
  private promptTokens = 0;
  private completionTokens = 0;
  private cachedTokens = 0;
  private timings: GenerationTimings = { queueMs: 0, prefillMs: 0, decodeMs: 0 };
  private stopSequence: string | null = null;
  private firstTokenSeen = false;
  /** For the console: when the first token came, tokens generated so far, whether an engine started it. */
  private firstTokenAt = 0;
  private generated = 0;
  private started = false;
  /** Known at admission; handed to the sink when the first choice starts (see the header). */
  private startMeta: StartMeta | null = null;
  private sinkStarted = false;
  private texts: string[] = [];
  private finishReasons: FinishReason[] = [];
  private choiceDone: boolean[] = [];

  constructor(
    readonly input: GenerateInput,
    private readonly sink: TokenSink,
    private readonly metrics: Metrics,
    private readonly system: ActorSystem,
    private readonly debugAudit: boolean,
  ) {
    this.handle = {
      cancel: () => this.cancel(),
      pause: () => this.broadcast([T.Pause]),
      resume: () => this.broadcast([T.Resume]),
    };
  }

  admit(tokens: number[], sampling: EngineSampling): void {
    this.promptTokens = tokens.length;
    this.metrics.promptTokensTotal.inc({ model: this.model, backend: this.backend }, tokens.length);
    this.startMeta = { model: this.displayModel, promptTokens: tokens.length, created: Math.floor(Date.now() / 1000), tokenizeMs: this.tokenizeMs };
    const n = this.input.n;
    this.open = n;
    // Placement hints are salted like the KV they point at: another salt's prefix is no reason to go there.
    const prefix = prefixBlocks(tokens, blockSalt(this.adapter?.ref.key ?? '', this.cacheSalt));
    for (let i = 0; i < n; i++) {
      const { port1, port2 } = new MessageChannel();
      const id = (n === 1 ? this.input.requestId : `${this.input.requestId}/${i}`) as RequestId;
      this.ports.push(port1);
      this.ids.push(id);
      this.texts.push('');
      this.finishReasons.push('stop');
      this.choiceDone.push(false);
      // Choice i of a seeded request uses seed + i: reproducible, yet the choices differ.
      const body: AdmitBody = {
        id,
        model: this.model,
        tokens,
        sampling: { ...sampling, seed: (sampling.seed + i) >>> 0 },
        enqueuedAt: now(),
        priority: this.input.priority ?? 0,
        tenant: this.input.tenant ?? 'default',
        prefix,
        adapter: this.adapter?.ref ?? null,
        ...(this.cacheSalt === '' ? {} : { cacheSalt: this.cacheSalt }),
      };
      port1.on('message', (env: Envelope) => this.onFrame(i, unpack<OnRequestPortFromEngine>(env.f)));
      // The port closes early only when the worker holding it died (or shut down).
      port1.on('close', () => this.onPortClosed(i));
      if (!this.system.toScheduler([T.Admit, body], port2)) {
        return this.fail(new InferFluxError('worker_crashed', 'The scheduler is restarting; retry the request.', { retryAfter: 1 }));
      }
    }
  }

  private onFrame(choice: number, f: OnRequestPortFromEngine): void {
    if (this.ended) return;
    switch (f[0]) {
      case T.Started:
        this.started = true;
        this.metrics.queueWait.observe({ model: this.model }, f[1].queueMs / 1000);
        this.startSink();
        break;
      case T.Text:
        this.startSink();
        this.generated += f[2];
        this.trace.tokens(choice, f[2]);
        if (!this.firstTokenSeen && f[2] > 0) {
          this.firstTokenSeen = true;
          this.firstTokenAt = now();
          this.metrics.ttft.observe({ model: this.model }, (this.firstTokenAt - this.startedAt) / 1000);
        }
        if (f[3] !== undefined) {
          this.texts[choice] += f[1];
          if (!this.cancelled) this.sink.onText(choice, f[1], f[3].map(([token, logprob, top]) => ({ token, logprob, top: top.map(([t, p]) => ({ token: t, logprob: p })) })));
        } else if (f[1].length > 0) {
          this.texts[choice] += f[1];
          if (!this.cancelled) this.sink.onText(choice, f[1]);
        }
        break;
      case T.Done: {
        const [, reason, stats] = f;
        this.completionTokens += stats.completionTokens;
        this.completionPerChoice[choice] = stats.completionTokens;
        if (choice === 0) {
          this.cachedTokens = stats.cachedTokens;
          this.timings = { queueMs: stats.queueMs, prefillMs: stats.prefillMs, decodeMs: stats.decodeMs, ...(stats.kvTransferMs >= 0 ? { kvTransferMs: stats.kvTransferMs } : {}) };
          this.stopSequence = stats.stopSequence;
          this.countPrefix(stats.cachedTokens, stats.promptTokens);
        }
        this.finishReasons[choice] = reason;
        this.choiceDone[choice] = true;
        this.metrics.completionTokensTotal.inc({ model: this.model, backend: this.backend }, stats.completionTokens);
        this.metrics.prefillDuration.observe({ model: this.model }, stats.prefillMs / 1000);
        this.metrics.decodeDuration.observe({ model: this.model }, stats.decodeMs / 1000);
        this.metrics.batchExec.observe({ model: this.model }, (stats.prefillMs + stats.decodeMs) / 1000);
        if (stats.kvTransferMs >= 0) this.metrics.kvTransfer.observe({ model: this.model }, stats.kvTransferMs / 1000);
        if (stats.kvHydrateMs >= 0) this.metrics.kvHydrate.observe({ model: this.model }, stats.kvHydrateMs / 1000);
        if (stats.spec) {
          this.metrics.specChunks.inc({ model: this.model }, stats.spec[0]);
          this.metrics.specChunksAccepted.inc({ model: this.model }, stats.spec[1]);
          this.metrics.specTokensReused.inc({ model: this.model }, stats.spec[2]);
        }
        this.ports[choice]!.close();
        if (reason === 'cancelled') this.metrics.cancelledTotal.inc({ model: this.model });
        if (reason === 'cancelled' && !this.cancelled) {
          // The client is still there: the engine stopped the request (server shutting down).
          // Finishing it normally would hand the client a short answer that looks complete.
          return this.fail(new InferFluxError('shutting_down', 'The server stopped before the request finished; retry it.', { retryAfter: 1 }));
        }
        if (!this.cancelled && reason !== 'cancelled') {
          this.startSink();
          this.sink.onChoiceEnd(choice, reason, stats.completionTokens);
        }
        if (--this.open === 0) this.complete();
        break;
      }
      case T.Fail:
        this.fail(InferFluxError.fromWire(f[1]));
        break;
      default: {
        const never: never = f[0];
        throw new Error(`gateway: unknown frame ${String(never)}`);
      }
    }
  }

  /** What the console shows of this run: ids and counts, never the prompt or the text. */
  live(): RunningGeneration {
    const t = now();
    return {
      requestId: this.input.requestId,
      model: this.model,
      route: this.input.route,
      keyId: this.input.keyId,
      tenant: this.input.tenant,
      phase: this.started ? 'running' : 'queued',
      promptTokens: this.promptTokens,
      generatedTokens: this.generated,
      ageMs: Math.round(t - this.startedAt),
      ttftMs: this.firstTokenSeen ? Math.round(this.firstTokenAt - this.startedAt) : null,
    };
  }

  /** The first choice reached an engine: the response can begin. */
  private startSink(): void {
    if (this.sinkStarted || this.cancelled || !this.startMeta) return;
    this.sinkStarted = true;
    this.sink.onStart(this.startMeta);
  }

  /** Prefix cache outcome of the request: everything reusable was cached, some of it, or none. */
  private countPrefix(cached: number, prompt: number): void {
    const m = { model: this.model };
    if (cached <= 0) return this.metrics.prefixMisses.inc(m);
    this.metrics.prefixMatchedTokens.inc(m, cached);
    // The last prompt token is always evaluated (its logits start generation).
    if (cached >= prompt - 1) this.metrics.prefixHits.inc(m);
    else this.metrics.prefixPartialHits.inc(m);
  }

  /** A port closes before its Done frame only when the worker holding it died. */
  private onPortClosed(choice: number): void {
    if (this.ended || this.choiceDone[choice]) return;
    this.fail(new InferFluxError('worker_crashed', undefined, { retryAfter: 1 }));
  }

  private complete(): void {
    if (this.cancelled) {
      this.settle(499, 'cancelled');
      return this.finish();
    }
    this.startSink();
    this.sink.onEnd({
      promptTokens: this.promptTokens,
      completionTokens: this.completionTokens,
      cachedTokens: this.cachedTokens,
      timings: this.timings,
      stopSequence: this.stopSequence,
    });
    this.settle(200, 'allow');
    this.onComplete?.({ promptTokens: this.promptTokens, texts: [...this.texts], reasons: [...this.finishReasons], completion: [...this.completionPerChoice], stopSequence: this.stopSequence });
    this.finish();
  }

  /** Serve a cached response: the same sink calls a run would make, with no engine work. */
  replay(r: FinishedResponse): void {
    this.promptTokens = r.promptTokens;
    this.cachedTokens = r.promptTokens;
    this.texts = [...r.texts];
    this.finishReasons = [...r.reasons];
    this.sink.onStart({ model: this.displayModel, promptTokens: r.promptTokens, created: Math.floor(Date.now() / 1000), tokenizeMs: this.tokenizeMs });
    for (let i = 0; i < r.texts.length; i++) {
      if (r.texts[i]!.length > 0) this.sink.onText(i, r.texts[i]!);
      this.sink.onChoiceEnd(i, r.reasons[i]!, r.completion[i]!);
      this.completionTokens += r.completion[i]!;
    }
    this.sink.onEnd({ promptTokens: r.promptTokens, completionTokens: this.completionTokens, cachedTokens: r.promptTokens, timings: this.timings, stopSequence: r.stopSequence });
    this.settle(200, 'allow:cached');
    this.finish();
  }

  fail(err: InferFluxError): void {
    if (this.ended) return;
    for (let i = 0; i < this.ports.length; i++) this.stopChoice(i);
    if (!this.cancelled) this.sink.onError(err);
    this.settle(err.status, `error:${err.code}`);
    this.finish();
  }

  /**
   * The client left: no more sink calls. The run stays open until every engine confirms the
   * stop (Done 'cancelled'), so metrics and the audit line carry the real token counts and a
   * graceful shutdown waits for the sequences to be freed.
   */
  private cancel(): void {
    if (this.ended || this.cancelled) return;
    this.cancelled = true;
    if (this.ports.length === 0) {
      // Still tokenizing: start() sees the flag and finishes without admitting.
      return;
    }
    for (let i = 0; i < this.ports.length; i++) if (!this.choiceDone[i]) this.stopChoice(i);
  }

  /** Ask the engine (or the scheduler, if still queued) to drop a choice. */
  private stopChoice(i: number): void {
    const port = this.ports[i]!;
    const id = this.ids[i]!;
    try {
      postFrame(port, [T.Cancel, id]);
    } catch {
      // The port is already closed: the choice is over.
    }
    this.system.toScheduler([T.Cancel, id]);
  }

  finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.onFinish();
  }

  /** The model as the response names it: `base:adapter` under an adapter. */
  get displayModel(): string {
    return this.adapter ? `${this.model}:${this.adapter.id}` : this.model;
  }

  private broadcast(frame: [typeof T.Pause] | [typeof T.Resume]): void {
    for (const port of this.ports) {
      try {
        postFrame(port, frame);
      } catch {
        // Closed ports belong to finished choices.
      }
    }
  }

  /** The request has ended: its audit line and its token trace. */
  private settle(status: number, decision: string): void {
    this.audit(status, decision);
    this.onTrace?.(
      this.trace.finish({
        requestId: this.input.requestId,
        model: this.model,
        adapter: this.adapter?.id ?? null,
        route: this.input.route,
        keyId: this.input.keyId,
        tenant: this.input.tenant,
        status,
        outcome: decision,
        promptTokens: this.promptTokens,
        cachedTokens: this.cachedTokens,
        completionTokens: this.completionTokens,
        finishReasons: [...this.finishReasons],
        tokenizeMs: this.tokenizeMs,
        timings: this.timings,
      }),
    );
  }

  private audit(status: number, decision: string): void {
    const p = this.input.prompt;
    const promptText = p.kind === 'chat' ? JSON.stringify(p.messages) : p.kind === 'text' ? p.text : JSON.stringify(p.tokens);
    this.system.audit.record({
      ts: new Date().toISOString(),
      event: status >= 400 && status !== 499 ? 'error' : 'completion',
      requestId: this.input.requestId,
      keyId: this.input.keyId,
      tenant: this.input.tenant,
      traceparent: this.input.traceparent,
      route: this.input.route,
      model: this.model,
      adapter: this.adapter?.id,
      status,
      decision,
      promptTokens: this.promptTokens,
      completionTokens: this.completionTokens,
      latencyMs: Math.round((now() - this.startedAt) * 1000) / 1000,
      finishReason: this.finishReasons.join(','),
      // Raw text only in debug mode; otherwise hashes let an auditor match without storing content.
      prompt: this.debugAudit ? promptText : sha256(promptText),
      response: this.debugAudit ? this.texts.join('\u0000') : sha256(this.texts.join('\u0000')),
    });
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
