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

/** A streamed completion chunk, as far as the bench clients read it. */
export interface CompletionChunk {
  choices?: { text?: string }[];
  usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } | null;
  error?: { message?: string; code?: string };
}

export type CompletionEvent =
  | { kind: 'chunk'; chunk: CompletionChunk; at: number }
  /** An `error` event or a chunk carrying an error, as one line. */
  | { kind: 'error'; message: string; at: number }
  | { kind: 'done'; at: number };

/** The events of a streamed completion: its chunks, its SSE errors and `[DONE]`. */
export async function* completionEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<CompletionEvent> {
  for await (const { event, data, at } of sseData(body)) {
    if (data === '[DONE]') {
      yield { kind: 'done', at };
      continue;
    }
    const chunk = JSON.parse(data) as CompletionChunk;
    if (event === 'error' || chunk.error) yield { kind: 'error', message: `SSE error: ${chunk.error?.code ?? ''} ${chunk.error?.message ?? data}`.slice(0, 200), at };
    else yield { kind: 'chunk', chunk, at };
  }
}

/** A fetch failure as one line, with undici's cause (e.g. UND_ERR_SOCKET) when there is one. */
export function describeError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return `${e.name}: ${e.message}${e.cause ? ` (${e.cause.code ?? ''} ${e.cause.message ?? ''})` : ''}`;
}
