/**
 * `GET /v1/admin/console/events`: the console snapshot over SSE, once at connect and then every
 * `INTERVAL_MS` while anyone listens. One timer and one snapshot per tick serve every open
 * stream; a stream whose reader fell behind skips ticks (each snapshot is complete, so nothing is
 * lost but intermediate states) instead of buffering without bound. The number of open streams is
 * capped, and every stream ends when the server shuts down.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { ConsoleFeed } from '../../console-feed.js';
import { exchangeOf, onAbort } from '../../exchange.js';
import { sseStream } from '../../sse.js';
import type { StreamWriter } from '../../stream-writer.js';
import { buildSnapshot, type SnapshotSource } from './snapshot.js';

/** Time between snapshots on an open stream. */
export const INTERVAL_MS = 1000;
/** Console streams open at once (each costs one snapshot write per tick). */
export const MAX_STREAMS = 16;

interface Listener {
  stream: StreamWriter;
  /** The reader is behind: skip ticks until it catches up. */
  paused: boolean;
}

export class ConsoleLive {
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(
    private readonly src: SnapshotSource,
    feed: ConsoleFeed,
    private readonly opts: { heartbeatSeconds: number; maxBufferedBytes: number },
  ) {
    feed.onShutdown(() => this.closeAll());
  }

  open(res: HttpResponse): void {
    if (this.listeners.size >= MAX_STREAMS) {
      throw new InferFluxError('too_many_concurrent_requests', `${MAX_STREAMS} console streams are already open; close one (or poll GET /v1/admin/console).`, { retryAfter: 5 });
    }
    const l: Listener = { stream: undefined as unknown as StreamWriter, paused: false };
    l.stream = sseStream(res, {
      heartbeatSeconds: this.opts.heartbeatSeconds,
      maxBufferedBytes: this.opts.maxBufferedBytes,
      pause: () => (l.paused = true),
      resume: () => (l.paused = false),
    });
    this.listeners.add(l);
    onAbort(res, () => this.drop(l));
    l.stream.open();
    // The first snapshot at once, so the page fills without waiting for a tick.
    void buildSnapshot(this.src).then(
      (snap) => {
        if (this.listeners.has(l) && !exchangeOf(res).done) l.stream.send({ event: 'snapshot', data: snap });
      },
      (err: unknown) => this.fail(l, err),
    );
    this.timer ??= setInterval(() => void this.tick(), INTERVAL_MS);
  }

  private async tick(): Promise<void> {
    // A slow snapshot (engines busy) never stacks up behind itself.
    if (this.ticking) return;
    this.ticking = true;
    try {
      const snap = await buildSnapshot(this.src);
      for (const l of this.listeners) if (!l.paused) l.stream.send({ event: 'snapshot', data: snap });
    } catch (err) {
      for (const l of [...this.listeners]) this.fail(l, err);
    } finally {
      this.ticking = false;
    }
  }

  private fail(l: Listener, err: unknown): void {
    const e = InferFluxError.from(err);
    l.stream.fail({ event: 'error', data: { error: { message: e.message, type: e.type, param: null, code: e.code } } }, e);
    this.drop(l);
  }

  private drop(l: Listener): void {
    this.listeners.delete(l);
    if (this.listeners.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private closeAll(): void {
    for (const l of [...this.listeners]) {
      l.stream.end([{ event: 'end', data: { reason: 'shutting_down' } }]);
      this.drop(l);
    }
  }
}
