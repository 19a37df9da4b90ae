/**
 * OpenAI's Responses API in WebSocket mode: a client upgrades `GET /v1/responses` once and sends
 * `response.create` events (the body of `POST /v1/responses`, without `stream`); the server answers
 * each with the same events the SSE stream carries, one JSON message each, and an `error` event
 * where HTTP would answer an error status. Turns run one at a time per connection, in order
 * (later ones wait, at most MAX_PENDING). Each turn is a whole request through the edge
 * (../turn-response.ts): authenticated, rate limited, guarded, audited and logged like a POST.
 *
 * What the socket adds over HTTP is a continuation (OpenAI's `store: false` WebSocket mode): the
 * connection keeps its most recent response (the turn's input items and its output items) in
 * memory, so the next turn can send only its new items with `previous_response_id` naming that
 * response. Nothing is stored anywhere else, and it is gone with the connection; any other id is
 * `previous_response_not_found`.
 */
import { InferFluxError, openAIErrorBody } from '../../errors.js';
import type { SocketConversation } from '../types.js';
import { TurnResponse, type TurnSink } from '../turn-response.js';

/** The WebSocket under a connection; uWS throws on a closed socket, so every call checks it is open. */
export interface SocketLink {
  /** Sends one text message; false when the socket's buffer is over its limit (backpressure). */
  send(text: string): boolean;
  cork(fn: () => void): void;
  /** Ends the connection (the server's shutdown deadline passed). */
  terminate(): void;
}

/** OpenAI's WebSocket error event: the HTTP error body's `error`, with the status HTTP would have answered. */
export function errorEvent(status: number, body: string): string {
  let error: unknown;
  try {
    error = (JSON.parse(body) as { error?: unknown }).error;
  } catch {
    error = undefined;
  }
  return JSON.stringify({ type: 'error', status, error: error ?? { type: 'server_error', code: 'internal_error', message: body, param: null } });
}

/** Turns a connection may have waiting behind the running one. */
export const MAX_PENDING = 16;

export interface ConnectionDeps {
  /** Runs one turn through the edge, as `POST /v1/responses` with the handshake's credentials. */
  serve(res: TurnResponse, body: Buffer, conversation: SocketConversation): void;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The final event of a response: what the next turn may build on. */
const FINAL = /^\{"type":"response\.(completed|incomplete)"/;

export class ResponsesConnection implements SocketConversation {
  private readonly pending: Buffer[] = [];
  private running: TurnResponse | null = null;
  /** This turn's whole input (its new items after the previous response's), once the handler expanded it. */
  private turnItems: readonly unknown[] | null = null;
  private last: { id: string; items: readonly unknown[] } | null = null;
  private closed = false;

  constructor(
    private readonly socket: SocketLink,
    private readonly deps: ConnectionDeps,
  ) {}

  /** One client message. */
  message(data: ArrayBuffer, isBinary: boolean): void {
    if (this.closed) return;
    if (isBinary) return this.refuse(new InferFluxError('invalid_request', 'Binary messages are not client events: send response.create as JSON text.'));
    let ev: unknown;
    try {
      ev = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      return this.refuse(new InferFluxError('invalid_json', 'The message is not valid JSON.'));
    }
    if (!isObject(ev)) return this.refuse(new InferFluxError('invalid_request', 'A client event is a JSON object with a type.'));
    const { type, ...body } = ev;
    if (type !== 'response.create') {
      const named = type === undefined ? "Missing required parameter: 'type'." : `Unknown client event type ${JSON.stringify(type).slice(0, 80)}: this server takes 'response.create'.`;
      return this.refuse(new InferFluxError('invalid_request', named, { param: 'type' }));
    }
    if (this.pending.length >= MAX_PENDING) {
      return this.refuse(new InferFluxError('queue_full', `This connection already has ${MAX_PENDING} turns waiting behind the running one; send the next when one ends.`));
    }
    this.pending.push(Buffer.from(JSON.stringify(body)));
    this.next();
  }

  /** The socket's buffer drained. */
  drained(): void {
    this.running?.drained();
  }

  /** The connection is gone: the running turn is cancelled like a client that left, waiting ones dropped. */
  close(): void {
    this.closed = true;
    this.pending.length = 0;
    this.running?.abort();
  }

  // ---- SocketConversation: what the Responses handler asks ---------------------------------

  itemsOf(id: string): readonly unknown[] | null {
    return this.last !== null && this.last.id === id ? this.last.items : null;
  }

  started(items: readonly unknown[]): void {
    this.turnItems = items;
  }

  // ---- internals -------------------------------------------------------------------------

  private next(): void {
    if (this.running || this.closed) return;
    const body = this.pending.shift();
    if (!body) return;
    const sink: TurnSink = {
      event: (json) => {
        this.seen(json);
        return this.socket.send(json);
      },
      error: (status, text) => void this.socket.send(errorEvent(status, text)),
      cork: (fn) => this.socket.cork(fn),
      terminate: () => this.socket.terminate(),
    };
    const turn = new TurnResponse(
      body,
      sink,
      () => {
        this.running = null;
        this.turnItems = null;
        this.next();
      },
    );
    this.running = turn;
    this.deps.serve(turn, body, this);
  }

  /** Keeps the response a final event describes: its id, and its input then output items. */
  private seen(json: string): void {
    if (!FINAL.test(json) || this.turnItems === null) return;
    const r = (JSON.parse(json) as { response?: { id?: unknown; output?: unknown } }).response;
    if (typeof r?.id !== 'string' || !Array.isArray(r.output)) return;
    this.last = { id: r.id, items: [...this.turnItems, ...(r.output as unknown[])] };
  }

  /** A message that is not a turn: an `error` event, and the connection stays open. */
  private refuse(err: InferFluxError): void {
    this.socket.send(JSON.stringify({ type: 'error', status: err.status, error: openAIErrorBody(err).error }));
  }
}
