/**
 * The HTTP edge on uWebSockets.js. One catch-all uWS handler copies what it needs from the
 * stack-allocated request, attaches the abort handler before anything else (uWS #1296), normalises
 * the path once and dispatches through our own router. Route families register themselves.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import uWS, { type HttpRequest, type HttpResponse, type us_listen_socket } from 'uWebSockets.js';
import { InferFluxError } from '../errors.js';
import type { PolicyContext } from '../policy/pipeline.js';
import { ANONYMOUS } from '../policy/principal.js';
import { traceparentFor } from '../policy/traceparent.js';
import { bufferBodyEarly } from './body.js';
import { Cors } from './cors.js';
import { attachExchange, type Exchange } from './exchange.js';
import { sendError, sendRaw } from './respond.js';
import { normalisePath, pathText, protocolForPath, Router } from './router.js';
import { register as registerChat } from './routes/openai-chat/index.js';
import { register as registerCompletions } from './routes/openai-completions/index.js';
import { register as registerModels } from './routes/models/index.js';
import { register as registerOps } from './routes/ops/index.js';
import { register as registerAdmin } from './routes/admin/index.js';
import { register as registerAdminCache } from './routes/admin-cache/index.js';
import { register as registerAdminFairness } from './routes/admin-fairness/index.js';
import { register as registerOllamaGenerate } from './routes/ollama-generate/index.js';
import { register as registerOllamaModels } from './routes/ollama-models/index.js';
import { register as registerAnthropic } from './routes/anthropic-messages/index.js';
import { register as registerResponses } from './routes/openai-responses/index.js';
import { register as registerTokenizer } from './routes/llama-tokenizer/index.js';
import { register as registerLmStudio } from './routes/lmstudio/index.js';
import type { HttpDeps, RequestContext } from './types.js';

export interface HttpServer {
  /** Starts listening; resolves with the bound port (config port 0 picks a free one). */
  listen(): Promise<number>;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to `deadlineMs`, then
   * closes what is left (their generations are cancelled through the abort path).
   */
  close(deadlineMs?: number): Promise<void>;
}

/** Said by every 404 for an unknown path, so a client pointed at the wrong base URL learns where to go. */
export const APIS_SERVED =
  'This server speaks OpenAI /v1 (chat/completions, completions, responses, models), Ollama /api (chat, generate, tags, show, ps, version), LM Studio /api/v0, Anthropic /v1/messages and llama.cpp /tokenize, /detokenize, /apply-template.';

/** Client request ids are echoed only when short and plain, so logs and headers stay safe. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

function requestIdFrom(header: string): string {
  return SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

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
  registerLmStudio(router);
  registerAdmin(router, deps);
  registerAdminCache(router, deps);
  registerAdminFairness(router, deps);
  return router;
}

export function createHttpServer(deps: HttpDeps): HttpServer {
  const log = deps.log ?? (() => {});
  const router = buildRouter(deps);
  const cors = new Cors(deps.config.server.cors);
  const pipeline = deps.pipeline;
  const inflight = new Set<HttpResponse>();
  let listenSocket: us_listen_socket | undefined;
  let closing = false;

  const record = (ex: Exchange, startedAt: number, res: HttpResponse) => {
    inflight.delete(res);
    const model = ex.model || 'none';
    deps.metrics.requestsTotal.inc({ route: ex.route, model, backend: 'cpu', status: String(ex.status) });
    if (ex.errorCode) deps.metrics.errorsTotal.inc({ model, code: ex.errorCode });
    deps.metrics.requestLatency.observe({ model }, (performance.now() - startedAt) / 1000);
  };

  const dispatch = (res: HttpResponse, req: HttpRequest): void => {
    const startedAt = performance.now();
    // Everything needed later is copied now: `req` is invalid after this function returns.
    const method = req.getMethod();
    const rawPath = req.getUrl();
    const query = req.getQuery() ?? '';
    const contentType = req.getHeader('content-type').toLowerCase();
    const lengthHeader = req.getHeader('content-length');
    const chunked = req.getHeader('transfer-encoding') !== '';
    // Credentials: kept in locals and handed to the policy pipeline, never logged.
    const authorization = req.getHeader('authorization');
    const apiKey = req.getHeader('x-api-key');
    const origin = req.getHeader('origin');
    const priorityHeader = req.getHeader('x-inferflux-priority');
    const preflightMethod = method === 'options' ? req.getHeader('access-control-request-method') : '';
    const preflightHeaders = method === 'options' ? req.getHeader('access-control-request-headers') : '';
    const ex = attachExchange(res, requestIdFrom(req.getHeader('x-request-id')));
    ex.traceparent = traceparentFor(req.getHeader('traceparent'));
    ex.headers.traceparent = ex.traceparent;
    cors.apply(origin, ex.headers);
    const finishHooks: (() => void)[] = [];
    ex.onFinish = () => {
      record(ex, startedAt, res);
      for (const fn of finishHooks.splice(0)) fn();
    };
    inflight.add(res);

    if (closing) return sendError(res, new InferFluxError('shutting_down'), { closeConnection: true });
    const segments = normalisePath(rawPath);
    if (segments === null) {
      return sendError(res, new InferFluxError('invalid_request', 'The request path is not valid percent-encoding.'));
    }
    const path = pathText(segments);
    ex.protocol = protocolForPath(segments);
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
    };
    const handler = found.route.handler;
    let handlerStarted = false;
    const onError = (err: unknown) => {
      const e = InferFluxError.from(err);
      if (e.code === 'internal_error') log(`request ${ex.requestId} ${method.toUpperCase()} ${path} failed: ${String(err)}`);
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
      ctx.principal = pctx.principal;
      ex.principal = pctx.principal;
      ex.chargeTokens = pctx.chargeTokens;
      return runHandler();
    };
    try {
      const ret = pipeline.run(pctx, afterPolicy);
      if (ret instanceof Promise) {
        // The pipeline awaits (OIDC): uWS hands the body only to an onData attached now.
        if (!handlerStarted && method !== 'get') bufferBodyEarly(res, ctx, deps.config.server.maxBodyBytes);
        ret.catch(onError);
      }
    } catch (err) {
      onError(err);
    }
  };

  const { tls } = deps.config.server;
  const app = (tls.enabled ? uWS.SSLApp({ cert_file_name: tls.certPath, key_file_name: tls.keyPath }) : uWS.App()).any('/*', dispatch);

  return {
    listen() {
      const { host, port } = deps.config.server;
      return new Promise((resolve, reject) => {
        app.listen(host, port, (socket) => {
          if (!socket) return reject(new Error(`cannot listen on ${host}:${port}`));
          listenSocket = socket;
          const actual = uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
          resolve(actual);
        });
      });
    },
    async close(deadlineMs = 5000) {
      closing = true;
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
    },
  };
}
