/**
 * One WebSocket turn as an HTTP exchange. A `response.create` event runs through the same edge as
 * `POST /v1/responses` (policy pipeline, body limits, handler, runner, guardrails, audit, metrics,
 * access log) by giving the dispatcher this stand-in for uWS's `HttpResponse`: it hands over the
 * event's JSON as the request body, and turns what the edge writes back into WebSocket messages,
 * the stream's NDJSON lines (one event each) as they come and an error response as one `error`
 * event. Only the members the edge uses are implemented (respond.ts, body.ts, stream-writer.ts,
 * exchange.ts, the server's close()).
 */
import type { RecognizedString } from 'uWebSockets.js';

/** The connection a turn writes to. */
export interface TurnSocket {
  /** Sends one text message; false when the socket's buffer is over its limit (backpressure). */
  send(text: string): boolean;
  cork(fn: () => void): void;
  /** Cuts the connection (the server's shutdown deadline passed). */
  terminate(): void;
}

export interface TurnEnd {
  /** The HTTP status the edge gave the turn. */
  status: number;
}

const decoder = new TextDecoder();

function textOf(chunk: RecognizedString): string {
  if (typeof chunk === 'string') return chunk;
  if (chunk instanceof ArrayBuffer) return decoder.decode(chunk);
  if (ArrayBuffer.isView(chunk)) return decoder.decode(chunk);
  return String(chunk);
}

/** OpenAI's WebSocket error event: the HTTP error body's `error`, with the status it would have had. */
export function errorEvent(status: number, body: string): string {
  let error: unknown;
  try {
    error = (JSON.parse(body) as { error?: unknown }).error;
  } catch {
    error = undefined;
  }
  return JSON.stringify({ type: 'error', status, error: error ?? { type: 'server_error', code: 'internal_error', message: body, param: null } });
}

export class TurnResponse {
  private status = 200;
  /** Text of a line not yet complete (stream chunks need not end on a line break). */
  private partial = '';
  private closed = false;
  private abortHandler: (() => void) | undefined;
  private writableHandler: ((offset: number) => boolean) | undefined;
  private written = 0;

  constructor(
    private readonly body: Buffer,
    private readonly socket: TurnSocket,
    /** Each event of the turn (one JSON object), before it is sent. */
    private readonly onEvent: (json: string) => void,
    private readonly onEnd: (end: TurnEnd) => void,
  ) {}

  // ---- what the edge calls -----------------------------------------------------------------

  onAborted(handler: () => void): this {
    this.abortHandler = handler;
    return this;
  }

  /** The body arrives whole, once, right after the reader attaches (as uWS would deliver it). */
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    const b = this.body;
    queueMicrotask(() => {
      if (!this.closed) handler(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer, true);
    });
    return this;
  }

  onWritable(handler: (offset: number) => boolean): this {
    this.writableHandler = handler;
    return this;
  }

  cork(fn: () => void): this {
    this.socket.cork(fn);
    return this;
  }

  writeStatus(status: RecognizedString): this {
    this.status = Number.parseInt(textOf(status), 10);
    return this;
  }

  /** HTTP headers have no place in a WebSocket message (rate-limit headers went out on the handshake). */
  writeHeader(): this {
    return this;
  }

  write(chunk: RecognizedString): boolean {
    return this.lines(textOf(chunk));
  }

  end(body?: RecognizedString): this {
    if (this.closed) return this;
    const text = body === undefined ? '' : textOf(body);
    if (this.status >= 400) this.socket.send(errorEvent(this.status, text));
    else this.lines(text + '\n');
    this.closed = true;
    this.onEnd({ status: this.status });
    return this;
  }

  endWithoutBody(): this {
    return this.end();
  }

  /** The server's shutdown deadline: the turn is cut like a client that left, then the connection. */
  close(): this {
    this.abort();
    this.socket.terminate();
    return this;
  }

  // ---- what the connection calls -------------------------------------------------------------

  /** The connection closed under the turn: the edge sees a client that left (generation cancelled). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.abortHandler?.();
  }

  /** The socket drained: a paused stream goes on. */
  drained(): void {
    if (!this.closed) this.writableHandler?.(this.written);
  }

  /** Complete NDJSON lines out as messages; false under backpressure. */
  private lines(text: string): boolean {
    this.written += text.length;
    const all = this.partial + text;
    const cut = all.lastIndexOf('\n');
    if (cut < 0) {
      this.partial = all;
      return true;
    }
    this.partial = all.slice(cut + 1);
    let ok = true;
    for (const line of all.slice(0, cut).split('\n')) {
      // The writer's flush filler is a space: it only ever pads a line.
      const json = line.trim();
      if (json === '') continue;
      this.onEvent(json);
      ok = this.socket.send(json) && ok;
    }
    return ok;
  }
}
