/**
 * Types shared by the HTTP edge: what a route handler receives. Handlers never touch `HttpRequest`
 * (uWS stack-allocates it; it is dead after the first `await`), only this copied context.
 */
import type { Tracer } from '@opentelemetry/api';
import type { HttpResponse } from 'uWebSockets.js';
import type { Gateway } from '../generation/contract.js';
import type { AuditEvent } from '../audit/event.js';
import type { InferFluxConfig } from '../config/types.js';
import type { Metrics } from '../metrics.js';
import type { GuardrailEngine } from '../policy/guardrails/guardrail-engine.js';
import type { PolicyService } from '../policy/policy-service.js';
import type { PolicyLayer } from '../policy/pipeline.js';
import type { Principal } from '../policy/types.js';
import type { ConsoleFeed } from './console-feed.js';

export interface HttpDeps {
  config: InferFluxConfig;
  gateway: Gateway;
  metrics: Metrics;
  log?: (msg: string) => void;
  /** OpenTelemetry tracer when trace export is on (src/telemetry/tracing.ts); null or absent = no spans. */
  tracer?: Tracer | null;
  /** The live policy; the admin API edits it (through `update`, persisted first). */
  policy?: PolicyService;
  /** Audit sink for decisions made on the main thread (admin changes, auth outcomes, denials). */
  audit?: AuditSink;
  /** Guardrails for generation routes (prompt checks, output filter); absent = none. */
  guardrails?: GuardrailEngine;
  /**
   * Authentication, authorisation and rate limits (src/policy/pipeline.ts), run on every matched
   * request before its handler. Absent = no policy (edge unit tests): every caller is anonymous
   * with every scope.
   */
  pipeline?: PolicyLayer;
  /**
   * Recent activity for the operations console (bounded rings, see console-feed.ts). The server
   * creates one when absent; serve.ts brings its own to tee the audit events into it.
   */
  console?: ConsoleFeed;
}

export interface AuditSink {
  record(event: AuditEvent): void;
}

export interface RequestContext {
  method: string;
  /** Normalised path (see router.ts); the one form every later check sees. */
  path: string;
  /** Decoded path parameters by name, e.g. `{id: 'llama3'}` for `/v1/models/:id`. */
  params: Record<string, string>;
  query: string;
  /** Lower-cased `content-type` header, '' when absent. */
  contentType: string;
  /** Declared `content-length`, or undefined (chunked bodies). */
  contentLength: number | undefined;
  requestId: string;
  /** `performance.now()` at arrival. */
  startedAt: number;
  /** The authenticated caller (anonymous with every scope when auth is off). */
  principal: Principal;
  /** W3C traceparent: the caller's when valid, else a new one; echoed in the response. */
  traceparent: string;
  /** Raw `X-InferFlux-Priority` header ('' when absent); the body's `priority` wins over it. */
  priorityHeader: string;
  /** @internal Body bytes read before an await in the policy pipeline (see body.ts). */
  bodyBuffer?: Promise<Buffer>;
  /** A WebSocket turn: its connection (ws/responses-socket.ts); absent over HTTP. */
  conversation?: SocketConversation | undefined;
}

/** What a WebSocket connection keeps between its turns (OpenAI's Responses WebSocket mode). */
export interface SocketConversation {
  /** The input then output items of the connection's most recent response, if `id` names it; else null. */
  itemsOf(id: string): readonly unknown[] | null;
  /** This turn's whole input (after the previous response's items), for the turn after it. */
  started(items: readonly unknown[]): void;
}

export type Handler = (res: HttpResponse, ctx: RequestContext) => void | Promise<void>;

export type Method = 'get' | 'post' | 'put' | 'delete' | 'head';
