/**
 * A request that did not arrive as HTTP/1 (a WebSocket turn, a gRPC call) as an HTTP exchange.
 * It runs through the same edge as its HTTP twin (policy pipeline, body limits, handler, runner,
 * guardrails, audit, metrics, access log) by giving the dispatcher this stand-in for uWS's
 * `HttpResponse`: it hands over the request's JSON as the body, and passes what the edge writes
 * back to its transport: a stream (framed as JSON lines for such requests, see runner.ts) one
 * event at a time, a whole JSON body as one event, an error status with its body. Only the
 * members the edge uses are implemented (respond.ts, body.ts, stream-writer.ts, exchange.ts, the
 * server's close()).
 */
import type { RecognizedString } from 'uWebSockets.js';

/** Where a turn's answer goes: its transport. */
export interface TurnSink {
  /** One event (a JSON object's text); false under backpressure. */
  event(json: string): boolean;
  /** The edge answered an error status instead; `body` is the protocol's error envelope. */
  error(status: number, body: string): void;
  cork(fn: () => void): void;
  /** Cuts the transport (the server's shutdown deadline passed). */
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
    private readonly sink: TurnSink,
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
    this.sink.cork(fn);
    return this;
  }

  writeStatus(status: RecognizedString): this {
    this.status = Number.parseInt(textOf(status), 10);
    return this;
  }

  /** Response headers have no place in these transports (a WebSocket's went out on its handshake). */
  writeHeader(): this {
    return this;
  }

  write(chunk: RecognizedString): boolean {
    return this.lines(textOf(chunk));
  }

  end(body?: RecognizedString): this {
    if (this.closed) return this;
    const text = body === undefined ? '' : textOf(body);
    if (this.status >= 400) this.sink.error(this.status, text);
    else this.lines(text + '\n');
    this.closed = true;
    this.onEnd({ status: this.status });
    return this;
  }

  endWithoutBody(): this {
    return this.end();
  }

  /** The server's shutdown deadline: the turn is cut like a client that left, then its transport. */
  close(): this {
    this.abort();
    this.sink.terminate();
    return this;
  }

  // ---- what the connection calls -------------------------------------------------------------

  /** The transport closed under the turn: the edge sees a client that left (generation cancelled). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.abortHandler?.();
  }

  /** The transport drained: a paused stream goes on. */
  drained(): void {
    if (!this.closed) this.writableHandler?.(this.written);
  }

  /** Complete JSON lines out as events; false under backpressure. */
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
      ok = this.sink.event(json) && ok;
    }
    return ok;
  }
}
