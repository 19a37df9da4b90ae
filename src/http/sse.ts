/**
 * Server-sent events framing: `event: name` where the protocol names its events (Anthropic,
 * OpenAI Responses), `data:` lines (multi-line data split, one `data:` per line), a blank line.
 * Event names with CR/LF are refused (they would end the field and inject another). Idle streams
 * get `: ping` comment lines.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { StreamWriter, type StreamEvent, type StreamFormat, type StreamOptions } from './stream-writer.js';

export function sseFrame(ev: StreamEvent): string {
  const text = typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data);
  let out = '';
  if (ev.event !== undefined) {
    if (/[\r\n]/.test(ev.event)) throw new Error(`SSE event name contains a line break: ${JSON.stringify(ev.event)}`);
    out += `event: ${ev.event}\n`;
  }
  return out + text.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join('') + '\n';
}

export function sseStream(res: HttpResponse, opts: StreamOptions & { heartbeatSeconds: number }): StreamWriter {
  const format: StreamFormat = {
    contentType: 'text/event-stream',
    frame: sseFrame,
    filler: ':\n',
    heartbeat: { text: ': ping\n\n', seconds: opts.heartbeatSeconds },
  };
  return new StreamWriter(res, format, opts);
}
