/**
 * Runs one generation for an OpenAI-style route and writes the result: one JSON object, or an SSE
 * stream of chunks. Chat and text completions differ only in their `Shape`. Errors that arrive
 * before the stream opened get their real HTTP status; after that they become an SSE error event.
 * A client that leaves cancels the generation (the exchange's abort handler).
 */
import { randomUUID } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import type { FinishReason, GenerateInput, GenerationHandle, StartMeta, TokenSink, Usage } from '../../../actors/gateway-types.js';
import { InferFluxError } from '../../../errors.js';
import { exchangeOf, onAbort } from '../../exchange.js';
import { sendError, sendJson } from '../../respond.js';
import { SseWriter } from '../../sse.js';
import { meteredSink, withCaller } from './caller.js';
import type { HttpDeps } from '../../types.js';
import { denialAuditEvent, guardrailDenied } from '../../../policy/guardrails/guardrail-engine.js';
import { guardSink } from '../../../policy/guardrails/guarded-sink.js';
import type { OutputRules } from '../../../policy/guardrails/output-filter.js';

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

export interface RunOptions {
  input: GenerateInput;
  stream: boolean;
  includeUsage: boolean;
  shape: Shape;
}

function usageBody(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    // OpenAI's field for prompt tokens served from cache (here: KV reused by the engine).
    prompt_tokens_details: { cached_tokens: u.cachedTokens ?? 0 },
  };
}

/** `cancelled` only happens when the client left; if it ever reaches a live client the server stopped it. */
function stoppedByServer(): InferFluxError {
  return new InferFluxError('shutting_down', 'The server stopped this generation before it finished.');
}

/**
 * Guardrails first, when configured: a denied prompt gets 400 `guardrail_denied` and an audit
 * line; an allowed one is generated from the (possibly redacted) prompt, its output filtered.
 */
export function runGeneration(res: HttpResponse, deps: HttpDeps, opts: RunOptions): void {
  // The caller the policy pipeline authenticated: key id, tenant, priority (audit, fairness).
  opts = { ...opts, input: withCaller(exchangeOf(res), opts.input) };
  const guard = deps.guardrails;
  if (!guard?.active) return startGeneration(res, deps, opts, null);
  const ex = exchangeOf(res);
  const { input } = opts;
  const ctx = { requestId: input.requestId, prompt: input.prompt, model: input.model, tenant: input.tenant, keyId: input.keyId, route: ex.route };
  guard.checkPrompt(ctx).then(
    (v) => {
      if (ex.aborted || ex.done) return;
      if (v.allow) return startGeneration(res, deps, { ...opts, input: { ...input, prompt: v.prompt } }, v.output);
      ex.model = input.model ?? ex.model;
      deps.audit?.record(denialAuditEvent(ctx, v.reason, 'prompt', deps.config.audit.debugMode, v.detail));
      sendError(res, guardrailDenied(v.reason, v.detail));
    },
    (err: unknown) => sendError(res, InferFluxError.from(err)),
  );
}

function startGeneration(res: HttpResponse, deps: HttpDeps, opts: RunOptions, output: OutputRules | null): void {
  const { input, shape } = opts;
  const ex = exchangeOf(res);
  ex.model = input.model ?? ex.model;
  const id = shape.idPrefix + randomUUID().replaceAll('-', '');
  const n = input.n;
  const texts: string[] = Array.from({ length: n }, () => '');
  const reasons: (FinishReason | undefined)[] = Array.from({ length: n }, () => undefined);
  let meta: StartMeta | undefined;
  let over = false;

  // The gateway may call the sink (even pause via backpressure) before generate() returns.
  let handle: GenerationHandle | undefined;
  let pausedEarly = false;
  const sse = opts.stream
    ? new SseWriter(res, {
        maxBufferedBytes: deps.config.server.sseMaxBufferedBytes,
        heartbeatSeconds: deps.config.server.sseHeartbeatSeconds,
        pause: () => (handle ? handle.pause() : (pausedEarly = true)),
        resume: () => (handle ? handle.resume() : (pausedEarly = false)),
      })
    : undefined;

  const chunk = (choices: Record<string, unknown>[], extra: Record<string, unknown> = {}) => ({
    id,
    object: shape.chunkObject,
    created: meta!.created,
    model: meta!.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices,
    ...(opts.includeUsage ? { usage: null } : {}),
    ...extra,
  });

  const fail = (err: InferFluxError) => {
    over = true;
    if (sse?.isOpen) sse.fail(err);
    else sendError(res, err);
  };

  const sink: TokenSink = {
    onStart(m) {
      if (over) return;
      meta = m;
      ex.model = m.model;
      if (!sse) return;
      sse.open();
      if (shape.startChoice) for (let i = 0; i < n; i++) sse.send(chunk([shape.startChoice(i)]));
    },
    onText(choice, text) {
      if (over || !meta || text === '') return;
      if (sse) sse.send(chunk([shape.textChoice(choice, text)]));
      else texts[choice] += text;
    },
    onChoiceEnd(choice, reason) {
      if (over || !meta) return;
      if (reason === 'cancelled') return fail(stoppedByServer());
      reasons[choice] = reason;
      sse?.send(chunk([shape.endChoice(choice, reason)]));
    },
    onEnd(usage) {
      if (over || !meta) return;
      over = true;
      if (sse) {
        deps.metrics.streamTokensTotal.inc({ model: meta.model }, usage.completionTokens);
        if (opts.includeUsage) sse.send(chunk([], { usage: usageBody(usage) }));
        sse.end();
        return;
      }
      sendJson(res, 200, {
        id,
        object: shape.object,
        created: meta.created,
        model: meta.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: texts.map((t, i) => shape.finalChoice(i, t, reasons[i] ?? 'stop')),
        usage: usageBody(usage),
      });
    },
    onError(err) {
      if (!over) fail(err);
    },
  };

  // Output guardrails: on a denial mid-stream, stop the generation and end with an error.
  let cancelEarly = false;
  const guarded = output
    ? guardSink(sink, output, n, {
        deny(reason) {
          deps.guardrails?.recordOutputDenial(reason);
          const ctx = { requestId: input.requestId, prompt: input.prompt, model: meta?.model ?? input.model, tenant: input.tenant, keyId: input.keyId, route: ex.route };
          deps.audit?.record(denialAuditEvent(ctx, reason, 'output', deps.config.audit.debugMode));
          if (handle) handle.cancel();
          else cancelEarly = true;
          fail(guardrailDenied(reason));
        },
        done: (seconds, redacted) => deps.guardrails?.recordOutputTime(seconds, redacted),
      })
    : sink;

  try {
    handle = deps.gateway.generate(input, meteredSink(ex, guarded));
  } catch (err) {
    fail(InferFluxError.from(err));
    return;
  }
  if (cancelEarly) handle.cancel();
  if (pausedEarly) handle.pause();
  const h = handle;
  onAbort(res, () => {
    over = true;
    h.cancel();
  });
}
