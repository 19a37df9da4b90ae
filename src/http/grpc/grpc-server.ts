/**
 * InferFlux over gRPC (`server.grpc`): service `inferflux.v1.Inference` (inferflux.proto beside
 * this file) and `grpc.health.v1.Health/Check`, on their own port (HTTP/2; uWS speaks HTTP/1).
 * Every call is served as its HTTP twin through the whole edge (`StartingHttpServer.call`):
 * ChatCompletions as `POST /v1/chat/completions` with `stream: true`, ListModels as `GET
 * /v1/models`, Check as `GET /readyz`, so credentials (the `authorization` or `x-api-key`
 * metadata), scopes, rate limits, guardrails, audit and access lines, metrics and traces are the
 * HTTP ones. An HTTP error status becomes the matching gRPC status with the same message, the
 * error code in the `inferflux-error-code` trailer.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { TlsConfig } from '../../config/types.js';
import { ERRORS } from '../../errors.js';
import type { EdgeCall } from '../server.js';
import type { TurnEnd, TurnResponse, TurnSink } from '../turn-response.js';

/** The .proto files: copied next to the compiled module by `npm run build`. */
const PROTOS = ['inferflux.proto', 'health.proto'].map((f) => fileURLToPath(new URL(f, import.meta.url)));

export interface GrpcEdge {
  call(req: EdgeCall, sink: TurnSink, onEnd: (end: TurnEnd) => void): TurnResponse;
}

export interface GrpcServer {
  port: number;
  /** Stops taking calls; running ones get until the deadline, then are cut. */
  close(deadlineMs?: number): Promise<void>;
}

interface ChatMessage {
  role: string;
  content: string;
}
interface ChatCompletionRequest {
  model?: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  seed?: number;
  stop: string[];
  n?: number;
  json_schema?: string;
  adapter?: string;
}
/** The part of an OpenAI chat chunk a gRPC chunk carries. */
interface ChatChunkJson {
  id?: string;
  model?: string;
  created?: number;
  choices?: { index: number; delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } | null;
  error?: { message: string; code: string };
}

/** HTTP status -> gRPC status (the table of grpc/grpc doc/http-grpc-status-mapping.md, and ours for the rest). */
const STATUS: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  405: grpc.status.UNIMPLEMENTED,
  409: grpc.status.ABORTED,
  413: grpc.status.RESOURCE_EXHAUSTED,
  415: grpc.status.INVALID_ARGUMENT,
  422: grpc.status.FAILED_PRECONDITION,
  429: grpc.status.RESOURCE_EXHAUSTED,
  499: grpc.status.CANCELLED,
  500: grpc.status.INTERNAL,
  501: grpc.status.UNIMPLEMENTED,
  502: grpc.status.UNAVAILABLE,
  503: grpc.status.UNAVAILABLE,
  504: grpc.status.DEADLINE_EXCEEDED,
};

/** An HTTP error answer (OpenAI's envelope) as a gRPC error: same message, code and status in the trailers. */
function statusError(status: number, body: string): Partial<grpc.StatusObject> {
  let message = body;
  let code = '';
  try {
    const e = (JSON.parse(body) as { error?: { message?: string; code?: string } }).error;
    message = e?.message ?? body;
    code = e?.code ?? '';
  } catch {
    // Not an error envelope: the text as it is.
  }
  const metadata = new grpc.Metadata();
  if (code !== '') metadata.set('inferflux-error-code', code);
  metadata.set('inferflux-http-status', String(status));
  return { code: STATUS[status] ?? (status >= 500 ? grpc.status.INTERNAL : grpc.status.UNKNOWN), details: message, metadata };
}

/** The first string value of a metadata key, or ''. */
function first(md: grpc.Metadata, key: string): string {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : '';
}

function edgeCall(md: grpc.Metadata, method: EdgeCall['method'], path: string, body?: unknown): EdgeCall {
  return {
    method,
    path,
    body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)),
    authorization: first(md, 'authorization'),
    apiKey: first(md, 'x-api-key'),
    traceparent: first(md, 'traceparent'),
    requestId: first(md, 'x-request-id'),
  };
}

/** The chat request as OpenAI's body; fields left unset stay out, so the route's defaults apply. */
function chatBody(r: ChatCompletionRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {
    messages: r.messages.map((m) => ({ role: m.role, content: m.content })),
    stream: true,
    stream_options: { include_usage: true },
  };
  const optional: [keyof ChatCompletionRequest, string][] = [
    ['model', 'model'],
    ['max_tokens', 'max_tokens'],
    ['temperature', 'temperature'],
    ['top_p', 'top_p'],
    ['top_k', 'top_k'],
    ['seed', 'seed'],
    ['n', 'n'],
    ['adapter', 'adapter'],
  ];
  for (const [from, to] of optional) if (r[from] !== undefined) body[to] = r[from];
  if (r.stop.length > 0) body.stop = r.stop;
  if (r.json_schema !== undefined) {
    let schema: unknown;
    try {
      schema = JSON.parse(r.json_schema);
    } catch {
      throw Object.assign(new Error("'json_schema' is not valid JSON."), { grpcStatus: grpc.status.INVALID_ARGUMENT });
    }
    body.response_format = { type: 'json_schema', json_schema: { name: 'grpc', schema } };
  }
  return body;
}

function chatCompletions(edge: GrpcEdge): grpc.handleServerStreamingCall<ChatCompletionRequest, unknown> {
  return (call) => {
    let body: Record<string, unknown>;
    try {
      body = chatBody(call.request);
    } catch (err) {
      call.emit('error', { code: (err as { grpcStatus: grpc.status }).grpcStatus, details: (err as Error).message });
      return;
    }
    let failed = false;
    const fail = (e: Partial<grpc.StatusObject>) => {
      if (failed) return;
      failed = true;
      call.emit('error', e);
    };
    const sink: TurnSink = {
      event(json) {
        // The stream's last line is OpenAI's `[DONE]`, not JSON.
        if (!json.startsWith('{') || failed) return true;
        const c = JSON.parse(json) as ChatChunkJson;
        if (c.error) {
          // Failed mid-stream (the HTTP status was already 200): the error as a status.
          const status = (ERRORS as Record<string, { status: number } | undefined>)[c.error.code]?.status ?? 500;
          fail(statusError(status, JSON.stringify({ error: c.error })));
          return true;
        }
        const base = { id: c.id ?? '', model: c.model ?? '', created: c.created ?? 0 };
        let ok = true;
        for (const ch of c.choices ?? []) {
          const delta = ch.delta?.content ?? '';
          if (delta === '' && !ch.finish_reason) continue;
          ok = call.write({ ...base, index: ch.index, delta, finish_reason: ch.finish_reason ?? '' }) && ok;
        }
        if (c.usage) {
          const u = c.usage;
          const usage = { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens, cached_tokens: u.prompt_tokens_details?.cached_tokens ?? 0 };
          ok = call.write({ ...base, usage }) && ok;
        }
        return ok;
      },
      error: (status, text) => fail(statusError(status, text)),
      cork: (fn) => fn(),
      terminate: () => fail({ code: grpc.status.UNAVAILABLE, details: 'The server is shutting down.' }),
    };
    const turn = edge.call(edgeCall(call.metadata, 'post', '/v1/chat/completions', body), sink, () => {
      if (!failed) call.end();
    });
    call.on('cancelled', () => turn.abort());
    call.on('drain', () => turn.drained());
  };
}

/** A unary call answered by one JSON body of the edge. */
function unary<Res>(edge: GrpcEdge, path: string, answer: (json: unknown) => Res, onError?: (status: number, text: string) => Res | null): grpc.handleUnaryCall<unknown, Res> {
  return (call, callback) => {
    let result: Res | undefined;
    const sink: TurnSink = {
      event(json) {
        result = answer(JSON.parse(json));
        return true;
      },
      error(status, text) {
        const alt = onError?.(status, text) ?? null;
        if (alt !== null) result = alt;
        else callback(statusError(status, text));
      },
      cork: (fn) => fn(),
      terminate: () => callback({ code: grpc.status.UNAVAILABLE, details: 'The server is shutting down.' }),
    };
    edge.call(edgeCall(call.metadata, 'get', path), sink, () => {
      if (result !== undefined) callback(null, result);
    });
  };
}

/** Services a health check may name ('' is the server as a whole). */
const HEALTH_SERVICES = new Set(['', 'inferflux.v1.Inference']);

/** /readyz is public: a probe needs no key. 503 is an answer here (NOT_SERVING), not an error. */
function health(edge: GrpcEdge): grpc.handleUnaryCall<{ service?: string }, unknown> {
  const check = unary(
    edge,
    '/readyz',
    () => ({ status: 'SERVING' }),
    (status) => (status === 503 ? { status: 'NOT_SERVING' } : null),
  );
  return (call, callback) => {
    const service = call.request.service ?? '';
    if (!HEALTH_SERVICES.has(service)) return callback({ code: grpc.status.NOT_FOUND, details: `No service '${service.slice(0, 128)}' here: check '' or 'inferflux.v1.Inference'.` });
    check(call, callback);
  };
}

function credentialsOf(tls: TlsConfig): grpc.ServerCredentials {
  if (!tls.enabled) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(tls.certPath), private_key: readFileSync(tls.keyPath) }], false);
}

/** Starts the gRPC server on `host:port` (0 picks a free port); resolves once it listens. */
export async function startGrpcServer(edge: GrpcEdge, host: string, port: number, tls: TlsConfig): Promise<GrpcServer> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTOS, { keepCase: true, longs: Number, enums: String, defaults: false, arrays: true })) as unknown as {
    inferflux: { v1: { Inference: grpc.ServiceClientConstructor } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const server = new grpc.Server();
  server.addService(pkg.inferflux.v1.Inference.service, {
    ChatCompletions: chatCompletions(edge),
    ListModels: unary(edge, '/v1/models', (json) => ({
      models: ((json as { data?: { id: string; owned_by?: string; created?: number }[] }).data ?? []).map((m) => ({ id: m.id, owned_by: m.owned_by ?? '', created: m.created ?? 0 })),
    })),
  });
  server.addService(pkg.grpc.health.v1.Health.service, {
    Check: health(edge),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, credentialsOf(tls), (err, p) =>
      err ? reject(new Error(`cannot listen for gRPC on ${host}:${port}: ${err.message}; choose another port with INFERFLUX_GRPC_PORT (server.grpc.port)`)) : resolve(p),
    ),
  );
  return {
    port: bound,
    close: (deadlineMs = 5000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, deadlineMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
