/**
 * Newline-delimited JSON streaming (Ollama's `/api/chat` and `/api/generate`): one JSON object per
 * line, `application/x-ndjson`. No heartbeats (every line must parse as JSON).
 *
 * The flush filler is a space, not a newline: the `ollama` npm client (0.6.x, `parseJSON`) runs
 * `JSON.parse` on every line, empty ones included, and logs `invalid json` for each. A space
 * starts no new line; it becomes leading whitespace of the next line, which JSON allows, so every
 * line still parses (the writer never writes filler after the last line).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { StreamWriter, type StreamEvent, type StreamFormat, type StreamOptions } from './stream-writer.js';

export function ndjsonFrame(ev: StreamEvent): string {
  // JSON.stringify escapes every line break inside strings, so one object stays one line.
  return (typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data)) + '\n';
}

/** Written when uWS must flush and nothing is queued (see the header). */
export const NDJSON_FILLER = ' ';

export function ndjsonStream(res: HttpResponse, opts: StreamOptions): StreamWriter {
  const format: StreamFormat = { contentType: 'application/x-ndjson', frame: ndjsonFrame, filler: NDJSON_FILLER, heartbeat: null };
  return new StreamWriter(res, format, opts);
}
