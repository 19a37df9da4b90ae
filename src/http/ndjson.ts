/**
 * Newline-delimited JSON streaming (Ollama's `/api/chat` and `/api/generate`): one JSON object per
 * line, `application/x-ndjson`. No heartbeats (every line must parse as JSON); the flush filler is
 * a bare newline, an empty line that line-splitting readers skip.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { StreamWriter, type StreamEvent, type StreamFormat, type StreamOptions } from './stream-writer.js';

export function ndjsonFrame(ev: StreamEvent): string {
  // JSON.stringify escapes every line break inside strings, so one object stays one line.
  return (typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data)) + '\n';
}

export function ndjsonStream(res: HttpResponse, opts: StreamOptions): StreamWriter {
  const format: StreamFormat = { contentType: 'application/x-ndjson', frame: ndjsonFrame, filler: '\n', heartbeat: null };
  return new StreamWriter(res, format, opts);
}
