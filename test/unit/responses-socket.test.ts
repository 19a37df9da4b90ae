/**
 * The Responses WebSocket mode's two pieces without a server: a turn as an HTTP exchange
 * (turn-response.ts: body in, NDJSON lines out as messages, an error status as an `error` event,
 * backpressure, abort) and a connection (responses-socket.ts: turns in order, the last response
 * kept for `previous_response_id`, bad events answered on the open connection).
 */
import { expect } from 'chai';
import { MAX_PENDING, ResponsesConnection, errorEvent, type SocketLink } from '../../src/http/ws/responses-socket.js';
import { TurnResponse, type TurnSink } from '../../src/http/turn-response.js';

class FakeSocket implements SocketLink {
  sent: string[] = [];
  full = false;
  terminated = 0;
  send(text: string): boolean {
    this.sent.push(text);
    return !this.full;
  }
  cork(fn: () => void): void {
    fn();
  }
  terminate(): void {
    this.terminated++;
  }
}

const encode = (s: string) => new TextEncoder().encode(s).buffer;

/** The connection's sink, as responses-socket.ts builds it, over a fake socket. */
const sinkOf = (socket: FakeSocket): TurnSink => ({
  event: (json) => socket.send(json),
  error: (status, body) => void socket.send(errorEvent(status, body)),
  cork: (fn) => socket.cork(fn),
  terminate: () => socket.terminate(),
});

describe('a turn as an HTTP exchange (WebSocket sink)', () => {
  it('hands the body over once, then sends each complete NDJSON line as one message (filler ignored)', async () => {
    const socket = new FakeSocket();
    const ends: number[] = [];
    const turn = new TurnResponse(Buffer.from('{"input":"hi"}'), sinkOf(socket), (e) => ends.push(e.status));
    const body = await new Promise<string>((resolve) => turn.onData((chunk, last) => last && resolve(Buffer.from(chunk).toString())));
    expect(body).to.equal('{"input":"hi"}');
    turn.writeStatus('200 OK');
    expect(turn.write('{"type":"a"}\n{"ty')).to.equal(true);
    turn.write(encode('pe":"b"}\n '));
    turn.end('{"type":"c"}\n');
    expect(socket.sent).to.deep.equal(['{"type":"a"}', '{"type":"b"}', '{"type":"c"}']);
    expect(ends).to.deep.equal([200]);
  });

  it('an error status becomes one error event with the status and the error body; abort after the end does nothing', () => {
    const socket = new FakeSocket();
    let aborted = 0;
    const turn = new TurnResponse(Buffer.alloc(0), sinkOf(socket), () => undefined);
    turn.onAborted(() => aborted++);
    turn.cork(() => {
      turn.writeStatus('429 Too Many Requests');
      turn.writeHeader();
      turn.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limited' } }));
    });
    expect(socket.sent.map((m) => JSON.parse(m))).to.deep.equal([
      { type: 'error', status: 429, error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limited' } },
    ]);
    turn.abort();
    expect(aborted).to.equal(0);
  });

  it('reports backpressure, resumes on drain, and is cut like a client that left on close()', () => {
    const socket = new FakeSocket();
    let aborted = 0;
    const offsets: number[] = [];
    const turn = new TurnResponse(Buffer.alloc(0), sinkOf(socket), () => undefined);
    turn.onAborted(() => aborted++);
    turn.onWritable((o) => (offsets.push(o), true));
    socket.full = true;
    expect(turn.write('{"type":"a"}\n')).to.equal(false);
    socket.full = false;
    turn.drained();
    expect(offsets).to.have.length(1);
    turn.close();
    expect(aborted).to.equal(1);
    expect(socket.terminated).to.equal(1);
  });
});

describe('ws: a Responses connection', () => {
  const final = (id: string, output: unknown[]) => JSON.stringify({ type: 'response.completed', sequence_number: 9, response: { id, output } });

  function connection() {
    const socket = new FakeSocket();
    const turns: { res: TurnResponse; body: unknown }[] = [];
    const conn = new ResponsesConnection(socket, { serve: (res, body) => void turns.push({ res, body: JSON.parse(body.toString()) }) });
    return { socket, turns, conn };
  }

  it('runs turns one at a time in order, without the event type', () => {
    const { turns, conn } = connection();
    conn.message(encode(JSON.stringify({ type: 'response.create', input: 'one' })), false);
    conn.message(encode(JSON.stringify({ type: 'response.create', input: 'two' })), false);
    expect(turns.map((t) => t.body)).to.deep.equal([{ input: 'one' }]);
    turns[0]!.res.end('');
    expect(turns.map((t) => t.body)).to.deep.equal([{ input: 'one' }, { input: 'two' }]);
  });

  it('keeps only the most recent response: its input then output items, from the final event', () => {
    const { turns, conn } = connection();
    conn.message(encode(JSON.stringify({ type: 'response.create', input: 'one' })), false);
    conn.started([{ role: 'user', content: 'one' }]);
    turns[0]!.res.end(final('resp_1', [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'A' }] }]) + '\n');
    expect(conn.itemsOf('resp_1')).to.deep.equal([
      { role: 'user', content: 'one' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'A' }] },
    ]);
    conn.message(encode(JSON.stringify({ type: 'response.create', input: 'two' })), false);
    conn.started([{ role: 'user', content: 'two' }]);
    // A turn that fails keeps the previous response as it was.
    turns[1]!.res.writeStatus('400 Bad Request');
    turns[1]!.res.end('{"error":{"message":"no","type":"invalid_request_error","param":null,"code":"invalid_request"}}');
    expect(conn.itemsOf('resp_1')).to.have.length(2);
    conn.message(encode(JSON.stringify({ type: 'response.create', input: 'three' })), false);
    conn.started([{ role: 'user', content: 'three' }]);
    turns[2]!.res.end(final('resp_3', []) + '\n');
    expect(conn.itemsOf('resp_1')).to.equal(null);
    expect(conn.itemsOf('resp_3')).to.deep.equal([{ role: 'user', content: 'three' }]);
  });

  it('answers what is not a turn with an error event and stays open; bounds the waiting turns', () => {
    const { socket, turns, conn } = connection();
    conn.message(encode('{'), false);
    conn.message(encode('[1]'), false);
    conn.message(encode('{"type":"response.cancel"}'), false);
    conn.message(encode('{}'), true);
    const errors = socket.sent.map((m) => JSON.parse(m) as { type: string; status: number; error: { code: string; param: string | null } });
    expect(errors.map((e) => [e.type, e.status, e.error.code])).to.deep.equal([
      ['error', 400, 'invalid_json'],
      ['error', 400, 'invalid_request'],
      ['error', 400, 'invalid_request'],
      ['error', 400, 'invalid_request'],
    ]);
    expect(errors[2]!.error.param).to.equal('type');
    for (let i = 0; i < MAX_PENDING + 2; i++) conn.message(encode(JSON.stringify({ type: 'response.create', input: String(i) })), false);
    expect(turns).to.have.length(1);
    expect((JSON.parse(socket.sent.at(-1)!) as { error: { code: string } }).error.code).to.equal('queue_full');
    // Closing cancels the running turn and drops the waiting ones.
    let aborted = 0;
    turns[0]!.res.onAborted(() => aborted++);
    conn.close();
    turns[0]!.res.end('');
    expect(aborted).to.equal(1);
    expect(turns).to.have.length(1);
  });
});
