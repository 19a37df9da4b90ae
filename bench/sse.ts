/**
 * The SSE reading every bench client shares: splits a response body into events, skips comment
 * (heartbeat) lines, tracks `event:` names, and yields each `data:` payload with the time its
 * bytes arrived (performance.now()), so clients measure TTFT and inter-token gaps the same way.
 */
import { performance } from 'node:perf_hooks';

export interface SseData {
  /** `message` unless an `event:` line named it (the server sends `error` for mid-stream errors). */
  event: string;
  data: string;
  /** performance.now() when the bytes carrying this line arrived. */
  at: number;
}

export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<SseData> {
  const decoder = new TextDecoder();
  let buf = '';
  let event = 'message';
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    const at = performance.now();
    buf += decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        event = 'message';
        continue;
      }
      if (line.startsWith(':')) continue; // heartbeat comment
      if (line.startsWith('event:')) {
        event = line.slice(6).trim();
        continue;
      }
      if (line.startsWith('data:')) yield { event, data: line.slice(5).trim(), at };
    }
  }
}

/** A fetch failure as one line, with undici's cause (e.g. UND_ERR_SOCKET) when there is one. */
export function describeError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return `${e.name}: ${e.message}${e.cause ? ` (${e.cause.code ?? ''} ${e.cause.message ?? ''})` : ''}`;
}
