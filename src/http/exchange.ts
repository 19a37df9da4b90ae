/**
 * Per-response state the edge keeps next to a uWS `HttpResponse`: whether the client left, whether
 * we already answered, and who wants to hear about an abort. uWS allows one `onAborted` handler per
 * response; the server attaches it first thing (before any await, uWS #1296) and fans it out here.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { WireProtocol } from '../errors.js';
import type { Principal } from '../policy/types.js';
import type { RequestTrace } from '../telemetry/request-trace.js';

export type Transport = 'http' | 'websocket' | 'grpc';

export interface Exchange {
  requestId: string;
  aborted: boolean;
  /** True once a complete response was handed to uWS. */
  done: boolean;
  /** Route label for metrics (the pattern, not the raw path, to bound label cardinality). */
  route: string;
  /** Model label for metrics, once known. */
  model: string;
  status: number;
  /** Error code for `inferflux_errors_total`, when the request failed. */
  errorCode: string | undefined;
  /** The capability a refusal named, for `inferflux_capability_rejections_total`. */
  capability: { model: string; name: string } | undefined;
  abortHandlers: (() => void)[];
  /** Called once when the response completed or the client left. */
  onFinish: (() => void) | undefined;
  /**
   * Headers every response to this request carries, whatever writes it (JSON, error, SSE):
   * `traceparent`, CORS, `x-ratelimit-*`, `www-authenticate`. Lower-case names.
   */
  headers: Record<string, string>;
  /** The caller, once the policy pipeline authenticated it. */
  principal: Principal | undefined;
  /** W3C traceparent of this request (the caller's when valid, else a new one). */
  traceparent: string;
  /** Charges tokens this request used to the caller's tokens-per-minute buckets (rate limits). */
  chargeTokens: ((tokens: number) => void) | undefined;
  /** Whose clients call this route: errors go out in that protocol's envelope. */
  protocol: WireProtocol;
  /** Token counts of a generation, for the access log and the trace (null until known). */
  tokensIn: number | null;
  tokensOut: number | null;
  /** `performance.now()` when a generation's first text came out (TTFT), null until then. */
  firstTextAt: number | null;
  /** The request's trace spans when tracing is on (src/telemetry/request-trace.ts). */
  trace: RequestTrace | null;
  /** How the request came: HTTP/1, a WebSocket (handshake or turn) or gRPC (the access line says so). */
  transport: Transport;
}

const KEY = Symbol('inferflux.exchange');
type Tagged = HttpResponse & { [KEY]?: Exchange };

export function attachExchange(res: HttpResponse, requestId: string): Exchange {
  const ex: Exchange = {
    requestId,
    aborted: false,
    done: false,
    route: 'unmatched',
    model: '',
    status: 0,
    errorCode: undefined,
    capability: undefined,
    abortHandlers: [],
    onFinish: undefined,
    headers: {},
    principal: undefined,
    traceparent: '',
    chargeTokens: undefined,
    protocol: 'openai',
    tokensIn: null,
    tokensOut: null,
    firstTextAt: null,
    trace: null,
    transport: 'http',
  };
  (res as Tagged)[KEY] = ex;
  res.onAborted(() => {
    ex.aborted = true;
    for (const h of ex.abortHandlers.splice(0)) h();
    finish(ex, 499); // nginx's "client closed request": the client left before the answer.
  });
  return ex;
}

export function exchangeOf(res: HttpResponse): Exchange {
  const ex = (res as Tagged)[KEY];
  if (!ex) throw new Error('response has no exchange; it did not come through the server dispatcher');
  return ex;
}

/** Runs `fn` if the client leaves before the response is done. */
export function onAbort(res: HttpResponse, fn: () => void): void {
  const ex = exchangeOf(res);
  if (ex.aborted) fn();
  else if (!ex.done) ex.abortHandlers.push(fn);
}

/** True when nothing may be written any more. */
export function isClosed(res: HttpResponse): boolean {
  const ex = exchangeOf(res);
  return ex.aborted || ex.done;
}

/** Marks the response complete and fires the metrics hook exactly once. */
export function finish(ex: Exchange, status: number): void {
  if (ex.status !== 0) return;
  ex.status = status;
  ex.done = true;
  ex.abortHandlers.length = 0;
  ex.onFinish?.();
}
