/**
 * A streamed response body over uWS (SSE or NDJSON), with bounded buffering. The formats
 * (sse.ts, ndjson.ts) only frame events; everything about the socket lives here.
 *
 * uWS `write()` always accepts the bytes; it returns false when some of them stay in its own
 * buffer. From then on this writer queues in JS and counts: once the bytes held (the chunk uWS
 * kept plus the queue) pass `maxBufferedBytes` it calls `pause()` so the engine stops producing,
 * and `resume()` once a write goes out completely. Measured on uWS 20.30: while an `onWritable`
 * handler is registered uWS does not drain its buffer by itself, so the handler must always write
 * something; with nothing queued it writes the format's `filler` (bytes a reader ignores) to push
 * the held bytes out.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { InferFluxError } from '../errors.js';
import { exchangeOf, finish } from './exchange.js';
import { statusLine } from './respond.js';

export interface StreamOptions {
  maxBufferedBytes: number;
  /** The reader fell behind: stop producing. */
  pause: () => void;
  /** The reader caught up. */
  resume: () => void;
}

/** One event of a streamed response; `event` names it where the format has names (SSE). */
export interface StreamEvent {
  /** JSON-encoded unless a string (written as it is). */
  data: unknown;
  event?: string;
}

/** What a streamed generation writes through, whatever its format. */
export interface EventStream {
  readonly isOpen: boolean;
  /** Writes status and headers. Idempotent. */
  open(): void;
  send(ev: StreamEvent): void;
  /** The last events, then the end of the response. */
  end(tail: StreamEvent[]): void;
  /** A mid-stream error: the protocol's error event, then the end (the status is for metrics). */
  fail(ev: StreamEvent, err: InferFluxError): void;
}

export interface StreamFormat {
  contentType: string;
  /** Framing of one event. */
  frame(ev: StreamEvent): string;
  /** Bytes a reader ignores: pushes uWS's buffer out when nothing is queued. */
  filler: string;
  /** Written on an idle stream every `heartbeatSeconds` (proxies close silent connections); null = none. */
  heartbeat: { text: string; seconds: number } | null;
}

export class StreamWriter implements EventStream {
  private opened = false;
  private closed = false;
  private congested = false;
  /** Bytes handed to uWS since the last write that went out completely (upper bound of its buffer). */
  private heldByUws = 0;
  private queue: string[] = [];
  private queued = 0;
  private paused = false;
  private wroteSinceTick = false;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: HttpResponse,
    private readonly format: StreamFormat,
    private readonly opts: StreamOptions,
  ) {}

  get isOpen(): boolean {
    return this.opened;
  }

  open(): void {
    const ex = exchangeOf(this.res);
    if (this.opened || ex.aborted || ex.done) return;
    this.opened = true;
    ex.abortHandlers.push(() => this.stop());
    this.res.cork(() => {
      this.res.writeStatus(statusLine(200));
      this.res.writeHeader('content-type', this.format.contentType);
      this.res.writeHeader('cache-control', 'no-cache');
      this.res.writeHeader('connection', 'keep-alive');
      // nginx buffers proxied responses unless told not to; tokens would arrive in bursts.
      this.res.writeHeader('x-accel-buffering', 'no');
      this.res.writeHeader('x-request-id', ex.requestId);
      for (const k in ex.headers) this.res.writeHeader(k, ex.headers[k]!);
    });
    this.res.onWritable(() => this.drain());
    const hb = this.format.heartbeat;
    if (hb) {
      this.heartbeat = setInterval(() => this.tick(hb.text), hb.seconds * 1000);
      this.heartbeat.unref();
    }
  }

  send(ev: StreamEvent): void {
    this.write(this.format.frame(ev));
  }

  end(tail: StreamEvent[]): void {
    this.close(tail.map((ev) => this.format.frame(ev)).join(''), 200);
  }

  fail(ev: StreamEvent, err: InferFluxError): void {
    const ex = exchangeOf(this.res);
    if (!ex.aborted && !ex.done) ex.errorCode = err.code;
    this.close(this.format.frame(ev), err.status);
  }

  private write(chunk: string): void {
    if (this.closed || !this.opened) return;
    this.wroteSinceTick = true;
    if (this.congested) {
      this.queue.push(chunk);
      this.queued += Buffer.byteLength(chunk);
      this.checkPause();
      return;
    }
    this.push(chunk);
  }

  private push(chunk: string): boolean {
    let ok = false;
    this.res.cork(() => {
      ok = this.res.write(chunk);
    });
    if (ok) {
      this.congested = false;
      this.heldByUws = 0;
      if (this.paused) {
        this.paused = false;
        this.opts.resume();
      }
    } else {
      this.congested = true;
      this.heldByUws += Buffer.byteLength(chunk);
      this.checkPause();
    }
    return ok;
  }

  private checkPause(): void {
    if (!this.paused && this.heldByUws + this.queued > this.opts.maxBufferedBytes) {
      this.paused = true;
      this.opts.pause();
    }
  }

  /** uWS says the socket is writable again: hand it the queue (or the filler to flush its buffer). */
  private drain(): boolean {
    if (this.closed) return true;
    const chunk = this.queue.length > 0 ? this.queue.join('') : this.format.filler;
    this.queue = [];
    this.queued = 0;
    return this.push(chunk);
  }

  private tick(text: string): void {
    // Only idle streams need a heartbeat.
    if (!this.wroteSinceTick) this.write(text);
    this.wroteSinceTick = false;
  }

  private close(last: string, status: number): void {
    if (this.closed) return;
    const ex = exchangeOf(this.res);
    this.stop();
    if (!this.opened || ex.aborted || ex.done) return;
    const rest = this.queue.join('') + last;
    this.queue = [];
    // `end` hands everything to uWS, which drains it in the background and then closes the chunked body.
    this.res.cork(() => this.res.end(rest));
    finish(ex, status);
  }

  private stop(): void {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}
