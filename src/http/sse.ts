/**
 * Server-sent events over a uWS response, with bounded buffering.
 *
 * uWS `write()` always accepts the bytes; it returns false when some of them stay in its own
 * buffer. From then on this writer queues in JS and counts: once the bytes held (the chunk uWS
 * kept plus the queue) pass `maxBufferedBytes` it calls `pause()` so the engine stops producing,
 * and `resume()` once a write goes out completely. Measured on uWS 20.30: while an `onWritable`
 * handler is registered uWS does not drain its buffer by itself, so the handler must always write
 * something; with nothing queued it writes an SSE comment line to push the held bytes out.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { openAIErrorBody, type InferFluxError } from '../errors.js';
import { exchangeOf, finish } from './exchange.js';
import { statusLine } from './respond.js';

export interface SseOptions {
  maxBufferedBytes: number;
  heartbeatSeconds: number;
  /** The reader fell behind: stop producing. */
  pause: () => void;
  /** The reader caught up. */
  resume: () => void;
}

export class SseWriter {
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
    private readonly opts: SseOptions,
  ) {}

  get isOpen(): boolean {
    return this.opened;
  }

  /** Writes status and headers. Idempotent. */
  open(): void {
    const ex = exchangeOf(this.res);
    if (this.opened || ex.aborted || ex.done) return;
    this.opened = true;
    ex.abortHandlers.push(() => this.stop());
    this.res.cork(() => {
      this.res.writeStatus(statusLine(200));
      this.res.writeHeader('content-type', 'text/event-stream');
      this.res.writeHeader('cache-control', 'no-cache');
      this.res.writeHeader('connection', 'keep-alive');
      // nginx buffers proxied responses unless told not to; tokens would arrive in bursts.
      this.res.writeHeader('x-accel-buffering', 'no');
      this.res.writeHeader('x-request-id', ex.requestId);
      for (const k in ex.headers) this.res.writeHeader(k, ex.headers[k]!);
    });
    this.res.onWritable(() => this.drain());
    this.heartbeat = setInterval(() => this.tick(), this.opts.heartbeatSeconds * 1000);
    this.heartbeat.unref();
  }

  /** One event; `data` is JSON-encoded unless already a string. Multi-line strings are split. */
  send(data: unknown): void {
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    this.write(text.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join('') + '\n');
  }

  /** Ends the stream the OpenAI way. */
  end(): void {
    this.close('data: [DONE]\n\n', 200);
  }

  /** A mid-stream error: OpenAI's SDK raises an `APIError` for a data event carrying `error`. */
  fail(err: InferFluxError): void {
    const ex = exchangeOf(this.res);
    if (!ex.aborted && !ex.done) ex.errorCode = err.code;
    this.close(`data: ${JSON.stringify(openAIErrorBody(err))}\n\n`, err.status);
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

  /** uWS says the socket is writable again: hand it the queue (or a comment to flush its buffer). */
  private drain(): boolean {
    if (this.closed) return true;
    const chunk = this.queue.length > 0 ? this.queue.join('') : ':\n';
    this.queue = [];
    this.queued = 0;
    return this.push(chunk);
  }

  private tick(): void {
    // Only idle streams need a heartbeat; proxies close connections that stay silent too long.
    if (!this.wroteSinceTick) this.write(': ping\n\n');
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
