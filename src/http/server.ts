/**
 * The HTTP edge on uWebSockets.js. One catch-all uWS handler copies what it needs from the
 * stack-allocated request, attaches the abort handler before anything else (uWS #1296), normalises
 * the path once and dispatches through our own router. Route families register themselves.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import uWS, { type HttpRequest, type HttpResponse, type us_listen_socket, type us_socket_context_t, type WebSocket } from 'uWebSockets.js';
import { InferFluxError } from '../errors.js';
import type { PolicyContext } from '../policy/pipeline.js';
import { ANONYMOUS } from '../policy/principal.js';
import { traceparentFor } from '../policy/traceparent.js';
import { logger } from '../log/logger.js';
import { accessLineSampled } from '../log/access-sampling.js';
import { modelBackend } from '../config/load.js';
import { RequestTrace } from '../telemetry/request-trace.js';
import { bufferBodyEarly } from './body.js';
import { compileHostCheck } from './host-check.js';
import { Cors } from './cors.js';
import { ConsoleFeed } from './console-feed.js';
import { attachExchange, finish, type Exchange, type Transport } from './exchange.js';
import { sendError, sendJson, sendRaw } from './respond.js';
import { normalisePath, pathText, protocolForPath, Router } from './router.js';
import { register as registerChat } from './routes/openai-chat/index.js';
import { register as registerCompletions } from './routes/openai-completions/index.js';
import { register as registerModels } from './routes/models/index.js';
import { register as registerOps } from './routes/ops/index.js';
import { register as registerAdmin } from './routes/admin/index.js';
import { register as registerAdminCache } from './routes/admin-cache/index.js';
import { register as registerAdminFairness } from './routes/admin-fairness/index.js';
import { register as registerAdminModels } from './routes/admin-models/index.js';
import { register as registerAdminAdapters } from './routes/admin-adapters/index.js';
import { register as registerOllamaGenerate } from './routes/ollama-generate/index.js';
import { register as registerOllamaModels } from './routes/ollama-models/index.js';
import { register as registerAnthropic } from './routes/anthropic-messages/index.js';
import { register as registerResponses } from './routes/openai-responses/index.js';
import { register as registerTokenizer } from './routes/llama-tokenizer/index.js';
import { register as registerEmbeddings } from './routes/openai-embeddings/index.js';
import { register as registerOllamaEmbed } from './routes/ollama-embed/index.js';
import { register as registerConsole } from './routes/console/index.js';
import { register as registerDebug } from './routes/debug/index.js';
import type { HttpDeps, RequestContext, SocketConversation } from './types.js';
import { ResponsesConnection, type SocketLink } from './ws/responses-socket.js';
import { TurnResponse, type TurnEnd, type TurnSink } from './turn-response.js';

export interface HttpServer {
  /**
   * Starts listening; resolves with the bound port (config port 0 picks a free one). The port is
   * taken exclusively: a port another process listens on is an error naming it, never a shared
   * socket (uWS reuses ports by default, and two servers would then split the clients).
   */
  listen(): Promise<number>;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to `deadlineMs`, then
   * closes what is left (their generations are cancelled through the abort path).
   */
  close(deadlineMs?: number): Promise<void>;
}

/**
 * A server that can listen before the models are loaded (start-up, or a supervised restart):
 * until `activate`, `/livez` and `/healthz` answer 200, `/readyz` 503, and every other route 503
 * `model_not_loaded` with `Retry-After`, so load balancers and clients wait instead of failing over
 * to a port nobody answers on.
 */
export interface StartingHttpServer extends HttpServer {
  /** Serves every route from now on. */
  activate(deps: HttpDeps): void;
  /**
   * Serves a request that came another way (a gRPC call) as its HTTP twin, through the whole
   * edge, answered through `sink` (turn-response.ts). The returned response's `abort()` is the
   * caller leaving.
   */
  call(req: EdgeCall, sink: TurnSink, onEnd: (end: TurnEnd) => void): TurnResponse;
}

/** A request from another frontend, as the HTTP request it stands for. */
export interface EdgeCall {
  method: 'get' | 'post';
  path: string;
  /** JSON; empty for a GET. */
  body: Buffer;
  /** Credentials as the caller sent them (`authorization`, `x-api-key`); '' when absent. */
  authorization: string;
  apiKey: string;
  /** The caller's W3C traceparent and request id; '' when absent. */
  traceparent: string;
  requestId: string;
}

/** The edge's needs before the actors exist. */
export type StartingDeps = Pick<HttpDeps, 'config' | 'metrics' | 'log' | 'tracer' | 'console'> & {
  /**
   * Refuse a port something already listens on. The check is an exclusive bind (no
   * SO_REUSEPORT, LIBUS_LISTEN_EXCLUSIVE_PORT) closed at once; the server then listens in uWS's
   * default mode, because a server that dies leaves its connections in TIME_WAIT on the port for
   * up to a minute, and only a listener in that same mode can bind over them: a supervised
   * restart sets this to false and re-binds at once. Defaults to `true`.
   */
  exclusivePort?: boolean;
};

/** Seconds a client is told to wait while models load. */
const STARTING_RETRY_AFTER_S = 1;

/**
 * uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT: bind without SO_REUSEPORT. The runtime exports it as
 * `uWS.LIBUS_LISTEN_EXCLUSIVE_PORT` (= 1) and accepts it as the third argument of
 * `listen(host, port, options, cb)`, but the installed d.ts declares neither, so both are typed here.
 */
const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;
type ListenWithOptions = {
  listen(host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void): unknown;
};

/** Said by every 404 for an unknown path, so a client pointed at the wrong base URL learns where to go. */
export const APIS_SERVED =
  'This server speaks OpenAI /v1 (chat/completions, completions, responses, embeddings, models), Ollama /api (chat, generate, embed, embeddings, tags, show, ps, version), LM Studio /api/v0, Anthropic /v1/messages and llama.cpp /tokenize, /detokenize, /apply-template.';

/** Client request ids are echoed only when short and plain, so logs and headers stay safe. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

function requestIdFrom(header: string): string {
  return SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** What the edge keeps of a request's head: copied at once, since uWS's `HttpRequest` is dead after the handler returns. */
interface RequestHead {
  method: string;
  rawPath: string;
  query: string;
  host: string;
  /** Request line plus headers, counted (uWS has no head size limit of its own below ~128 KiB). */
  headBytes: number;
  contentType: string;
  lengthHeader: string;
  chunked: boolean;
  /** Credentials: kept here and handed to the policy pipeline, never logged. */
  authorization: string;
  apiKey: string;
  origin: string;
  priorityHeader: string;
  preflightMethod: string;
  preflightHeaders: string;
  requestId: string;
  traceparent: string;
}

function copyHead(req: HttpRequest): RequestHead {
  const method = req.getMethod();
  const rawPath = req.getUrl();
  const query = req.getQuery() ?? '';
  let headBytes = method.length + rawPath.length + query.length + 12;
  req.forEach((name, value) => {
    headBytes += name.length + value.length + 4;
  });
  return {
    method,
    rawPath,
    query,
    host: req.getHeader('host'),
    headBytes,
    contentType: req.getHeader('content-type').toLowerCase(),
    lengthHeader: req.getHeader('content-length'),
    chunked: req.getHeader('transfer-encoding') !== '',
    authorization: req.getHeader('authorization'),
    apiKey: req.getHeader('x-api-key'),
    origin: req.getHeader('origin'),
    priorityHeader: req.getHeader('x-inferflux-priority'),
    preflightMethod: method === 'options' ? req.getHeader('access-control-request-method') : '',
    preflightHeaders: method === 'options' ? req.getHeader('access-control-request-headers') : '',
    requestId: req.getHeader('x-request-id'),
    traceparent: req.getHeader('traceparent'),
  };
}

/**
 * The head of a request that came another way (a WebSocket turn, a gRPC call): `base`'s
 * credentials and headers, as `method path` with a JSON body of `bodyBytes`.
 */
function standInHead(
  base: Pick<RequestHead, 'host' | 'headBytes' | 'authorization' | 'apiKey' | 'origin' | 'priorityHeader' | 'traceparent'>,
  method: string,
  path: string,
  bodyBytes: number,
  requestId: string,
): RequestHead {
  return {
    host: base.host,
    headBytes: base.headBytes,
    authorization: base.authorization,
    apiKey: base.apiKey,
    origin: base.origin,
    priorityHeader: base.priorityHeader,
    traceparent: base.traceparent,
    method,
    rawPath: path,
    query: '',
    contentType: method === 'get' ? '' : 'application/json',
    lengthHeader: String(bodyBytes),
    chunked: false,
    preflightMethod: '',
    preflightHeaders: '',
    requestId,
  };
}

/** The WebSocket route (OpenAI's Responses WebSocket mode) and what each of its sockets carries. */
const SOCKET_PATH = '/v1/responses';
interface SocketData {
  head: RequestHead;
  connection?: ResponsesConnection;
}
/**
 * uWS's own limit on a socket's send buffer: far above what a stream keeps buffered (its writer
 * pauses the generation at server.sse_max_buffered_bytes), so reaching it means a client that
 * stopped reading: uWS closes the socket rather than drop a message.
 */
const SOCKET_MAX_BACKPRESSURE = 64 * 1024 * 1024;
/** Seconds without a frame before uWS closes a socket; it pings well before that. */
const SOCKET_IDLE_TIMEOUT_S = 120;

export function buildRouter(deps: HttpDeps): Router {
  const router = new Router();
  registerOps(router, deps);
  registerModels(router, deps);
  registerChat(router, deps);
  registerCompletions(router, deps);
  registerOllamaGenerate(router, deps);
  registerOllamaModels(router, deps);
  registerAnthropic(router, deps);
  registerResponses(router, deps);
  registerTokenizer(router, deps);
  registerEmbeddings(router, deps);
  registerOllamaEmbed(router, deps);
  registerAdmin(router, deps);
  registerAdminCache(router, deps);
  registerAdminFairness(router, deps);
  registerAdminModels(router, deps);
  registerAdminAdapters(router, deps);
  registerConsole(router, deps);
  registerDebug(router, deps);
  return router;
}

/** A server that serves every route at once (tests, and anything built after start-up). */
export function createHttpServer(deps: HttpDeps): HttpServer {
  const server = createStartingHttpServer(deps);
  server.activate(deps);
  return server;
}

export function createStartingHttpServer(base: StartingDeps): StartingHttpServer {
  const cors = new Cors(base.config.server.cors);
  const hostAllowed = compileHostCheck(base.config.server.allowedHosts);
  let deps: HttpDeps | null = null;
  let router: Router | null = null;
  let pipeline: HttpDeps['pipeline'];
  const inflight = new Set<HttpResponse>();
  let listenSocket: us_listen_socket | undefined;
  let closing = false;

  const accessLog = logger().child({ component: 'http' });
  const tracer = base.tracer ?? null;
  // The console's recent activity (created here when the caller did not bring one to tee audit events into).
  const feed = base.console ?? new ConsoleFeed();

  const record = (ex: Exchange, startedAt: number, res: HttpResponse, method: string) => {
    inflight.delete(res);
    const model = ex.model || 'none';
    const seconds = (performance.now() - startedAt) / 1000;
    base.metrics.requestsTotal.inc({ route: ex.route, model, backend: modelBackend(base.config, ex.model), status: String(ex.status) });
    if (ex.errorCode) base.metrics.errorsTotal.inc({ model, code: ex.errorCode });
    if (ex.capability) base.metrics.capabilityRejections.inc({ model: ex.capability.model, capability: ex.capability.name });
    base.metrics.requestLatency.observe({ model }, seconds);
    // The access line: ids and counts only, never a key, a token or prompt text; successes sampled
    // per tenant (server.log_sampling), errors always written.
    const tenant = ex.principal?.tenant;
    if (accessLineSampled(base.config.server.logSampling, ex.requestId, tenant, ex.status)) {
      accessLog.info(
        {
          req_id: ex.requestId,
          trace_id: ex.traceparent.slice(3, 35),
          method: method.toUpperCase(),
          route: ex.route,
          status: ex.status,
          duration_ms: Math.round(seconds * 1e4) / 10,
          model: ex.model || undefined,
          tokens_in: ex.tokensIn ?? undefined,
          tokens_out: ex.tokensOut ?? undefined,
          key_id: ex.principal?.id,
          tenant,
          error_code: ex.errorCode,
          transport: ex.transport === 'http' ? undefined : ex.transport,
        },
        'request',
      );
    } else {
      base.metrics.logLinesSampledOut.inc({ tenant: tenant ?? 'none' });
    }
    feed.request({
      at: new Date().toISOString(),
      request_id: ex.requestId,
      trace_id: ex.traceparent.slice(3, 35),
      method: method.toUpperCase(),
      route: ex.route,
      status: ex.status,
      latency_ms: Math.round(seconds * 1e4) / 10,
      model: ex.model || null,
      tokens_in: ex.tokensIn,
      tokens_out: ex.tokensOut,
      ttft_ms: ex.firstTextAt === null ? null : Math.round((ex.firstTextAt - startedAt) * 10) / 10,
      key_id: ex.principal?.id ?? null,
      tenant: ex.principal?.tenant ?? null,
      error_code: ex.errorCode ?? null,
    });
    feed.budget(ex.principal?.id, ex.principal?.tenant, ex.headers);
    ex.trace?.end({
      method,
      route: ex.route,
      status: ex.status,
      requestId: ex.requestId,
      model: ex.model,
      keyId: ex.principal?.id,
      tenant: ex.principal?.tenant,
      tokensIn: ex.tokensIn,
      tokensOut: ex.tokensOut,
      errorCode: ex.errorCode,
    });
  };

  /**
   * What refuses a request by its head alone, before routing and auth: its size, a foreign Host
   * (DNS rebinding; a gRPC call is no browser's and has no Host header, so it is not checked), a
   * server shutting down. The caller answers and closes, so an unread body is never parsed.
   */
  const headRefusal = (head: RequestHead, transport: Transport): InferFluxError | null => {
    const max = base.config.server.maxHeaderBytes;
    if (head.headBytes > max) return new InferFluxError('headers_too_large', `The request line and headers take ${head.headBytes} bytes, more than the ${max} server.max_header_bytes allows.`);
    if (transport !== 'grpc' && !hostAllowed(head.host)) {
      const shown = JSON.stringify(head.host.slice(0, 256));
      return new InferFluxError('host_not_allowed', `The Host header ${shown} is not one this server answers for; an operator can add it to server.allowed_hosts (INFERFLUX_ALLOWED_HOSTS).`);
    }
    if (closing) return new InferFluxError('shutting_down');
    return null;
  };

  /**
   * Serves one request: an HTTP one, or one that came another way as a stand-in response
   * (turn-response.ts): a WebSocket turn (`conversation` is its connection) or a gRPC call.
   */
  const serve = (res: HttpResponse, head: RequestHead, startedAt: number, transport: Transport = 'http', conversation: SocketConversation | null = null): void => {
    const { method, rawPath, query, contentType, lengthHeader, chunked, authorization, apiKey, origin, priorityHeader, preflightMethod, preflightHeaders } = head;
    const ex = attachExchange(res, requestIdFrom(head.requestId));
    ex.transport = transport;
    const incomingTrace = head.traceparent;
    ex.traceparent = traceparentFor(incomingTrace);
    if (tracer) {
      // This request's root span: its traceparent (same trace id as the caller's) goes on to the
      // audit line, the logs and the response, naming our span as the parent of what follows.
      const t = new RequestTrace(tracer, method, incomingTrace, startedAt);
      if (t.recording) {
        ex.trace = t;
        ex.traceparent = t.traceparent;
      } else {
        t.end({ method, route: 'unsampled', status: 0, requestId: ex.requestId, model: '', keyId: undefined, tenant: undefined, tokensIn: null, tokensOut: null, errorCode: undefined });
      }
    }
    ex.headers.traceparent = ex.traceparent;
    cors.apply(origin, ex.headers);
    // uWS closes an idle keep-alive connection 8-12 s after a response (compiled in; README
    // limits). Saying 7 s lets clients that honour it (undici, fetch) retire the connection first
    // instead of reusing it just as the server closes it.
    ex.headers['keep-alive'] = 'timeout=7';
    const finishHooks: (() => void)[] = [];
    ex.onFinish = () => {
      record(ex, startedAt, res, method);
      for (const fn of finishHooks.splice(0)) fn();
    };
    inflight.add(res);

    const refusal = headRefusal(head, transport);
    if (refusal) return sendError(res, refusal, { closeConnection: true });
    const segments = normalisePath(rawPath);
    if (segments === null) {
      return sendError(res, new InferFluxError('invalid_request', 'The request path is not valid percent-encoding.'));
    }
    const path = pathText(segments);
    ex.protocol = protocolForPath(segments);
    if (!deps || !router) {
      const unreadBody = chunked || (/^\d+$/.test(lengthHeader) && Number(lengthHeader) > 0);
      return answerWhileStarting(res, ex, method, path, unreadBody);
    }
    if (method === 'options') {
      // Preflights come without credentials, so they are answered before the policy pipeline.
      const m = router.match(method, segments);
      if (m.kind === 'not_found') return sendError(res, new InferFluxError('not_found', `No route for OPTIONS ${path}.`));
      ex.route = path;
      const allow = m.kind === 'method_not_allowed' ? m.allow : [];
      const headers = cors.preflight(origin, preflightMethod, preflightHeaders, allow) ?? { allow: [...allow, 'OPTIONS'].join(', ') };
      return sendRaw(res, 204, '', 'text/plain', headers);
    }
    const found = router.match(method, segments);
    if (found.kind === 'not_found') {
      return sendError(res, new InferFluxError('not_found', `No route for ${method.toUpperCase()} ${path}. ${APIS_SERVED}`));
    }
    if (found.kind === 'method_not_allowed') {
      ex.route = path;
      const err = new InferFluxError('method_not_allowed', `${method.toUpperCase()} is not allowed on ${path}; use ${found.allow.join(', ')}.`);
      // RFC 9110 requires Allow on a 405.
      return sendError(res, err, { headers: { allow: found.allow.join(', ') } });
    }
    ex.route = found.route.pattern;
    ex.protocol = found.route.protocol;
    const ctx: RequestContext = {
      method,
      path,
      params: found.params,
      query,
      contentType,
      contentLength: /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined,
      requestId: ex.requestId,
      startedAt,
      principal: ANONYMOUS,
      traceparent: ex.traceparent,
      priorityHeader,
      conversation: conversation ?? undefined,
    };
    const handler = found.route.handler;
    let handlerStarted = false;
    const onError = (err: unknown) => {
      const e = InferFluxError.from(err);
      if (e.code === 'internal_error') accessLog.error({ req_id: ex.requestId, trace_id: ex.traceparent.slice(3, 35), err: String(err) }, `request ${method.toUpperCase()} ${ex.route} failed`);
      // Denied before its body was read: close, so unread body bytes never parse as a request.
      const unreadBody = !handlerStarted && (chunked || (ctx.contentLength ?? 0) > 0);
      sendError(res, e, { closeConnection: unreadBody });
    };
    const runHandler = (): void | Promise<void> => {
      handlerStarted = true;
      return handler(res, ctx);
    };
    if (!pipeline) {
      try {
        const ret = runHandler();
        if (ret instanceof Promise) ret.catch(onError);
      } catch (err) {
        onError(err);
      }
      return;
    }
    const pctx: PolicyContext = {
      method,
      segments,
      route: ex.route,
      requestId: ex.requestId,
      traceparent: ex.traceparent,
      authorization,
      apiKey,
      principal: ANONYMOUS,
      // Whatever the steps add (www-authenticate, x-ratelimit-*) goes out with any response.
      responseHeaders: ex.headers,
      chargeTokens: undefined,
      whenFinished: (fn) => (ex.status !== 0 ? fn() : void finishHooks.push(fn)),
    };
    const afterPolicy = (): void | Promise<void> => {
      ex.trace?.policyEnd(true);
      ctx.principal = pctx.principal;
      ex.principal = pctx.principal;
      ex.chargeTokens = pctx.chargeTokens;
      return runHandler();
    };
    ex.trace?.policyStart();
    try {
      const ret = pipeline.run(pctx, afterPolicy);
      if (ret instanceof Promise) {
        // The pipeline awaits (OIDC): uWS hands the body only to an onData attached now.
        if (!handlerStarted && method !== 'get') bufferBodyEarly(res, ctx, base.config.server.maxBodyBytes);
        ret.catch(onError);
      }
    } catch (err) {
      onError(err);
    }
  };

  const dispatch = (res: HttpResponse, req: HttpRequest): void => serve(res, copyHead(req), performance.now());

  /**
   * The WebSocket handshake on `GET /v1/responses`: the checks every request head gets (size, Host,
   * shutdown, start-up), a browser page's Origin allowed by `server.cors` or the server's own (a
   * page elsewhere must not drive the model: cross-site WebSocket hijacking), and the caller
   * authenticated and authorised for the route (`generate`), but not rate limited: each turn is,
   * as a request of its own. A refused handshake gets its HTTP error; every handshake gets an
   * access line and counts in `inferflux_requests_total` (status 101 when upgraded).
   */
  const upgrade = (res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void => {
    const startedAt = performance.now();
    const head = copyHead(req);
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const ex = attachExchange(res, requestIdFrom(head.requestId));
    ex.traceparent = traceparentFor(head.traceparent);
    ex.headers.traceparent = ex.traceparent;
    ex.route = SOCKET_PATH;
    ex.transport = 'websocket';
    ex.onFinish = () => record(ex, startedAt, res, head.method);
    // Closed after a refusal: the client's next bytes would be WebSocket frames, not a request.
    const refuse = (err: InferFluxError) => sendError(res, err, { closeConnection: true });
    const refusal = headRefusal(head, 'websocket');
    if (refusal) return refuse(refusal);
    if (!deps) return refuse(new InferFluxError('model_not_loaded', 'The server is starting: models are still loading.', { retryAfter: STARTING_RETRY_AFTER_S }));
    if (head.origin !== '' && !cors.allowsOrigin(head.origin) && !sameOrigin(head.origin, head.host)) {
      const shown = JSON.stringify(head.origin.slice(0, 256));
      return refuse(new InferFluxError('forbidden', `A WebSocket from a page at ${shown} is not allowed; an operator can add that origin to server.cors.allowed_origins.`));
    }
    const accept = (principal: PolicyContext['principal']): void => {
      if (ex.aborted) return;
      ex.principal = principal;
      res.cork(() => res.upgrade<SocketData>({ head }, key, protocol, extensions, context));
      finish(ex, 101);
    };
    if (!pipeline) return accept(ANONYMOUS);
    const pctx: PolicyContext = {
      method: 'post',
      segments: ['v1', 'responses'],
      route: SOCKET_PATH,
      requestId: ex.requestId,
      traceparent: ex.traceparent,
      authorization: head.authorization,
      apiKey: head.apiKey,
      principal: ANONYMOUS,
      responseHeaders: ex.headers,
      chargeTokens: undefined,
      whenFinished: (fn) => fn(),
    };
    try {
      const ret = pipeline.admit(pctx, () => accept(pctx.principal));
      if (ret instanceof Promise) ret.catch((err: unknown) => refuse(InferFluxError.from(err)));
    } catch (err) {
      refuse(InferFluxError.from(err));
    }
  };

  /** Open sockets: ended with 1001 when the server closes. */
  const sockets = new Set<WebSocket<SocketData>>();
  const openSocket = (ws: WebSocket<SocketData>): void => {
    sockets.add(ws);
    base.metrics.websocketConnections.inc({ route: SOCKET_PATH });
    const data = ws.getUserData();
    const limit = base.config.server.sseMaxBufferedBytes;
    // uWS throws on any use of a closed socket: every write checks it is still open.
    const socket: SocketLink = {
      send: (text) => {
        if (!sockets.has(ws)) return false;
        ws.send(text, false, false);
        return ws.getBufferedAmount() < limit;
      },
      cork: (fn) => (sockets.has(ws) ? void ws.cork(fn) : fn()),
      terminate: () => {
        if (sockets.has(ws)) ws.end(1001, 'server shutting down');
      },
    };
    const connection = new ResponsesConnection(socket, {
      serve: (turn: TurnResponse, body: Buffer) => serve(turn as unknown as HttpResponse, standInHead(data.head, 'post', SOCKET_PATH, body.byteLength, ''), performance.now(), 'websocket', connection),
    });
    data.connection = connection;
  };
  const closeSocket = (ws: WebSocket<SocketData>): void => {
    if (!sockets.delete(ws)) return;
    base.metrics.websocketConnections.dec({ route: SOCKET_PATH });
    ws.getUserData().connection?.close();
  };

  const { tls } = base.config.server;
  const app = (tls.enabled ? uWS.SSLApp({ cert_file_name: tls.certPath, key_file_name: tls.keyPath }) : uWS.App())
    .ws<SocketData>(SOCKET_PATH, {
      maxPayloadLength: base.config.server.maxBodyBytes,
      idleTimeout: SOCKET_IDLE_TIMEOUT_S,
      sendPingsAutomatically: true,
      maxBackpressure: SOCKET_MAX_BACKPRESSURE,
      closeOnBackpressureLimit: 1,
      upgrade,
      open: openSocket,
      message: (ws, message, isBinary) => ws.getUserData().connection?.message(message, isBinary),
      drain: (ws) => ws.getUserData().connection?.drained(),
      close: closeSocket,
    })
    .any('/*', dispatch);

  return {
    call(req, sink, onEnd) {
      const res = new TurnResponse(req.body, sink, onEnd);
      const credentials = { authorization: req.authorization, apiKey: req.apiKey, traceparent: req.traceparent };
      const base = { ...credentials, host: '', origin: '', priorityHeader: '', headBytes: req.path.length + Object.values(credentials).join('').length };
      const head = standInHead(base, req.method, req.path, req.body.byteLength, req.requestId);
      serve(res as unknown as HttpResponse, head, performance.now(), 'grpc');
      return res;
    },
    activate(full) {
      deps = full;
      pipeline = full.pipeline;
      router = buildRouter({ ...full, console: feed });
    },
    async listen() {
      const { host, port } = base.config.server;
      if (base.exclusivePort !== false && port !== 0) {
        // Port 0 is a fresh kernel pick: nobody else can be on it.
        const probe = await new Promise<us_listen_socket | false>((resolve) =>
          (uWS.App() as unknown as ListenWithOptions).listen(host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, resolve),
        );
        if (probe) uWS.us_listen_socket_close(probe);
        else throw portInUse(host, port);
      }
      return new Promise((resolve, reject) => {
        app.listen(host, port, (socket) => {
          if (!socket) {
            return reject(portInUse(host, port));
          }
          listenSocket = socket;
          const actual = uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
          resolve(actual);
        });
      });
    },
    async close(deadlineMs = 5000) {
      closing = true;
      // Console live streams never end by themselves: end them so they do not hold the drain.
      feed.shutdown();
      if (listenSocket) uWS.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      const until = Date.now() + deadlineMs;
      while (inflight.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      // What is still running past the deadline is cut; onAborted cancels its generation.
      for (const res of [...inflight]) {
        try {
          res.close();
        } catch {
          // Already gone: uWS freed it between our bookkeeping and now.
        }
      }
      inflight.clear();
      // Turns ran to the end above (they are requests in `inflight`); the sockets end now.
      for (const ws of [...sockets]) {
        try {
          ws.end(1001, 'server shutting down');
        } catch {
          // Closed by the client meanwhile.
        }
      }
    },
  };
}

/** A page served by this server itself (its Origin's host is the Host it asked for). */
function sameOrigin(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

function portInUse(host: string, port: number): Error {
  return new Error(
    `cannot listen on ${host}:${port}: the port is in use by another process or cannot be bound on that address; ` +
      'choose another with INFERFLUX_PORT (or server.port in the config file)',
  );
}

/** Answers a request that arrived before the models were loaded (see StartingHttpServer). */
function answerWhileStarting(res: HttpResponse, ex: Exchange, method: string, path: string, unreadBody: boolean): void {
  ex.route = path === '/livez' || path === '/healthz' || path === '/readyz' ? path : 'starting';
  if (method === 'get' && (path === '/livez' || path === '/healthz')) return sendJson(res, 200, { status: 'ok' });
  if (method === 'get' && path === '/readyz') {
    return sendJson(res, 503, { ready: false, status: 'starting', models: [], pools: [] }, { 'retry-after': String(STARTING_RETRY_AFTER_S) });
  }
  const err = new InferFluxError('model_not_loaded', 'The server is starting: models are still loading.', { retryAfter: STARTING_RETRY_AFTER_S });
  // The body was not read: close, so its bytes never parse as the next request.
  sendError(res, err, { closeConnection: unreadBody });
}
