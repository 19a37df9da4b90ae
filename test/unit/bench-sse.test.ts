/** The bench clients' shared SSE reader, on hand-made byte streams. */
import { expect } from 'chai';
import { completionEvents, sseData } from '../../bench/sse.js';

function body(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const s of chunks) c.enqueue(enc.encode(s));
      c.close();
    },
  });
}

async function collect(chunks: string[]) {
  const out: { event: string; data: string }[] = [];
  for await (const { event, data } of sseData(body(chunks))) out.push({ event, data });
  return out;
}

describe('bench SSE reader', () => {
  it('joins lines split across chunks, skips comments, handles CRLF and named events', async () => {
    expect(await collect(['data: {"a"', ':1}\n\n: ping\n\n', 'event: error\r\ndata: {"error":{}}\r\n\r\n', 'data: [DONE]\n\n'])).to.deep.equal([
      { event: 'message', data: '{"a":1}' },
      { event: 'error', data: '{"error":{}}' },
      { event: 'message', data: '[DONE]' },
    ]);
  });

  it('turns a completion stream into chunks, one-line errors and done', async () => {
    const kinds: string[] = [];
    const raw = ['data: {"choices":[{"text":"hi"}]}\n\n', 'event: error\ndata: {"error":{"code":"worker_crashed","message":"gone"}}\n\n', 'data: [DONE]\n\n'];
    for await (const e of completionEvents(body(raw))) kinds.push(e.kind === 'chunk' ? `chunk:${e.chunk.choices?.[0]?.text}` : e.kind === 'error' ? `error:${e.message}` : 'done');
    expect(kinds).to.deep.equal(['chunk:hi', 'error:SSE error: worker_crashed gone', 'done']);
  });
});
