/**
 * Runs one generation for any wire protocol and writes its response: one JSON body, or a stream
 * (SSE or NDJSON, as the protocol's encoder says). Protocol-neutral: the caller from the policy
 * pipeline, guardrails on the prompt and the output, token metering, cancel when the client
 * leaves, backpressure from a slow reader, denial audit lines. What the bytes look like is the
 * encoder's business (encoder.ts).
 *
 * Errors that arrive before the stream opened get their real HTTP status in the route protocol's
 * envelope; after that they become the protocol's error event. The stream opens when the first
 * choice starts on an engine (see generation/run.ts), so a request refused by a full queue is a 429.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { FinishReason, GenerateInput, GenerationHandle, StartMeta, TokenLogprob, TokenSink, ToolCall } from '../../generation/contract.js';
import { InferFluxError } from '../../errors.js';
import { denialAuditEvent, guardrailDenied } from '../../policy/guardrails/guardrail-engine.js';
import { guardSink } from '../../policy/guardrails/guarded-sink.js';
import type { OutputRules } from '../../policy/guardrails/output-filter.js';
import { exchangeOf, onAbort } from '../exchange.js';
import { ndjsonStream } from '../ndjson.js';
import { sendError, sendJson } from '../respond.js';
import { sseStream } from '../sse.js';
import type { EventStream, StreamEvent, StreamOptions } from '../stream-writer.js';
import type { HttpDeps } from '../types.js';
import { meteredSink, withCaller } from './caller.js';
import type { GenerationEncoder } from './encoder.js';
import { outputCheckSink } from './output-check.js';
import { toolCallSink, type ToolCallOptions, type ToolCallReceiver, type ToolCallRecord } from './tool-call-sink.js';
import { logger } from '../../log/logger.js';
import type { OutputCheckSpec } from '../../generation/structured-output.js';
import { generateEach } from '../../generation/fan-in.js';
import type { PromptInput } from '../../generation/contract.js';

export interface RunOptions {
  input: GenerateInput;
  stream: boolean;
  encoder: GenerationEncoder;
  /** Constrained output: what each finished choice is checked against (counted in metrics). */
  outputCheck?: OutputCheckSpec | null;
  /** Tools offered (and not `tool_choice: "none"`): the output is read for tool calls. */
  tools?: ToolCallOptions | null;
  /**
   * Batched prompts (legacy completions): each runs as its own generation of `input` with that
   * prompt, concurrently, into one response; prompt p's choice i is choice `p * input.n + i`
   * (generation/fan-in.ts). Absent: `input.prompt` alone.
   */
  prompts?: PromptInput[] | null;
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
  const ctxOf = (prompt: PromptInput) => ({ requestId: input.requestId, prompt, model: input.model, tenant: input.tenant, keyId: input.keyId, route: ex.route });
  // Every prompt of a batch is checked; the first denied one refuses the whole request.
  Promise.all((opts.prompts ?? [input.prompt]).map((p) => guard.checkPrompt(ctxOf(p)))).then(
    (verdicts) => {
      if (ex.aborted || ex.done) return;
      const denied = verdicts.findIndex((v) => !v.allow);
      if (denied >= 0) {
        const v = verdicts[denied]!;
        if (v.allow) return;
        const ctx = ctxOf((opts.prompts ?? [input.prompt])[denied]!);
        ex.model = input.model ?? ex.model;
        deps.audit?.record(denialAuditEvent(ctx, v.reason, 'prompt', deps.config.audit.debugMode, v.detail));
        return sendError(res, guardrailDenied(v.reason, v.detail));
      }
      const allowed = verdicts.flatMap((v) => (v.allow ? [v] : []));
      const kinds = [...new Set(allowed.flatMap((v) => v.redacted))];
      if (kinds.length > 0) {
        deps.console?.redaction({ stage: 'prompt', reason: kinds.join(','), request_id: input.requestId, route: ex.route, model: input.model ?? null, key_id: input.keyId ?? null, tenant: input.tenant ?? null });
      }
      const output = allowed[0]!.output;
      if (output && input.params.logprobs !== null) {
        // Token texts would show what the output filter redacts or denies.
        const why = 'logprobs are not available while output guardrails are on (token texts would bypass the output filter).';
        return sendError(res, new InferFluxError('invalid_request', why, { param: 'logprobs' }));
      }
      const prompts = opts.prompts ? allowed.map((v) => v.prompt) : null;
      startGeneration(res, deps, { ...opts, input: { ...input, prompt: allowed[0]!.prompt }, prompts }, output);
    },
    (err: unknown) => sendError(res, InferFluxError.from(err)),
  );
}

/**
 * The protocol's stream format over the shared bounded writer; `flow` is the backpressure pair.
 * A request that came as a WebSocket turn or a gRPC call gets its events as JSON lines, whatever
 * the protocol streams over HTTP: its stand-in response (turn-response.ts) sends each line as one
 * message.
 */
function openStream(res: HttpResponse, deps: HttpDeps, encoder: GenerationEncoder, flow: Pick<StreamOptions, 'pause' | 'resume'>): EventStream {
  const opts = { ...flow, maxBufferedBytes: deps.config.server.sseMaxBufferedBytes };
  if (encoder.streamFormat === 'ndjson' || exchangeOf(res).transport !== 'http') return ndjsonStream(res, opts);
  return sseStream(res, { ...opts, heartbeatSeconds: deps.config.server.sseHeartbeatSeconds });
}

function startGeneration(res: HttpResponse, deps: HttpDeps, opts: RunOptions, output: OutputRules | null): void {
  const { input, encoder } = opts;
  const ex = exchangeOf(res);
  ex.model = input.model ?? ex.model;
  // Choices of the whole response: every prompt's `n`.
  const n = input.n * (opts.prompts?.length ?? 1);
  const texts: string[] = Array.from({ length: n }, () => '');
  const reasons: FinishReason[] = Array.from({ length: n }, () => 'stop');
  const completionTokens: number[] = Array.from({ length: n }, () => 0);
  const logprobs = input.params.logprobs !== null ? Array.from({ length: n }, (): TokenLogprob[] => []) : null;
  const toolCalls: (ToolCall[] | null)[] = Array.from({ length: n }, () => null);
  let meta: StartMeta | undefined;
  let over = false;

  // The gateway may call the sink (even pause via backpressure) before generate() returns.
  let handle: GenerationHandle | undefined;
  let pausedEarly = false;
  const stream = opts.stream
    ? openStream(res, deps, encoder, {
        pause: () => (handle ? handle.pause() : (pausedEarly = true)),
        resume: () => (handle ? handle.resume() : (pausedEarly = false)),
      })
    : undefined;

  const fail = (err: InferFluxError) => {
    over = true;
    if (stream?.isOpen) stream.fail(encoder.streamError(err), err);
    else sendError(res, err);
  };
  const send = (events: StreamEvent[]) => {
    for (const ev of events) stream!.send(ev);
  };

  const sink: TokenSink & ToolCallReceiver = {
    onStart(m) {
      if (over) return;
      meta = m;
      ex.model = m.model;
      if (!stream) return;
      stream.open();
      send(encoder.start(m));
    },
    onText(choice, text, lps) {
      if (over || !meta || (text === '' && !lps?.length)) return;
      if (stream) return send(encoder.text(choice, text, lps));
      texts[choice] += text;
      if (logprobs && lps) logprobs[choice]!.push(...lps);
    },
    onToolCallStart(choice, index, id, name) {
      if (over || !meta) return;
      (toolCalls[choice] ??= [])[index] = { id, name, arguments: '' };
      if (stream && encoder.toolCallStart) send(encoder.toolCallStart(choice, index, id, name));
    },
    onToolCallArguments(choice, index, piece) {
      if (over || !meta) return;
      toolCalls[choice]![index]!.arguments += piece;
      if (stream && encoder.toolCallArguments) send(encoder.toolCallArguments(choice, index, piece));
    },
    onChoiceEnd(choice, reason, tokens) {
      if (over || !meta) return;
      if (reason === 'cancelled') return fail(stoppedByServer());
      reasons[choice] = reason;
      completionTokens[choice] = tokens;
      if (!stream) return;
      // Protocols that send calls whole get them once the choice is over.
      const calls = toolCalls[choice];
      if (calls && !encoder.toolCallStart) send(encoder.toolCalls?.(choice, calls, '') ?? []);
      send(encoder.choiceEnd(choice, reason, tokens));
    },
    onEnd(usage) {
      if (over || !meta) return;
      over = true;
      if (stream) {
        deps.metrics.streamTokensTotal.inc({ model: meta.model }, usage.completionTokens);
        return stream.end(encoder.end(usage));
      }
      sendJson(res, 200, encoder.body({ meta, texts, reasons, completionTokens, usage, logprobs, toolCalls }));
    },
    onError(err) {
      if (!over) fail(err);
    },
  };

  const onCall = deps.config.server.logToolCalls ? toolCallLog(opts.input.requestId, opts.input.model) : undefined;
  const withTools = opts.tools ? toolCallSink(sink, opts.tools, n, deps.metrics, onCall) : sink;
  // Checked after the output filter: the text the client receives is what must follow the schema.
  const checked = opts.outputCheck ? outputCheckSink(withTools, opts.outputCheck, n, deps.metrics) : withTools;
  // Output guardrails: on a denial mid-stream, stop the generation and end with an error.
  let cancelEarly = false;
  const guarded = output
    ? guardSink(checked, output, n, {
        deny(reason) {
          deps.guardrails?.recordOutputDenial(reason);
          const ctx = { requestId: input.requestId, prompt: input.prompt, model: meta?.model ?? input.model, tenant: input.tenant, keyId: input.keyId, route: ex.route };
          deps.audit?.record(denialAuditEvent(ctx, reason, 'output', deps.config.audit.debugMode));
          if (handle) handle.cancel();
          else cancelEarly = true;
          fail(guardrailDenied(reason));
        },
        done: (seconds, redacted) => {
          deps.guardrails?.recordOutputTime(seconds, redacted);
          if (redacted.length > 0) {
            const reason = [...new Set(redacted)].join(',');
            deps.console?.redaction({ stage: 'output', reason, request_id: input.requestId, route: ex.route, model: meta?.model ?? input.model ?? null, key_id: input.keyId ?? null, tenant: input.tenant ?? null });
          }
        },
      })
    : checked;

  try {
    const metered = meteredSink(ex, guarded);
    // Each prompt of a batch gets its own request id (the scheduler keys choices by it).
    const batch = opts.prompts?.map((prompt, p): GenerateInput => ({ ...input, requestId: `${input.requestId}-${p}`, prompt }));
    handle = batch ? generateEach(deps.gateway, batch, metered) : deps.gateway.generate(input, metered);
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

/** `server.log_tool_calls`: one info line per call a model made (ids, name, sizes; never the arguments). */
function toolCallLog(requestId: string, model: string | undefined): (call: ToolCallRecord) => void {
  const log = logger().child({ component: 'tools' });
  return (c) =>
    log.info({ req_id: requestId, model: model ?? 'default', choice: c.choice, index: c.index, call_id: c.id, function: c.name, format: c.format, argument_chars: c.argumentChars }, `tool call ${c.name}`);
}
