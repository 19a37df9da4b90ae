/**
 * Stream formats and per-protocol error envelopes on a real uWS server: NDJSON lines, SSE with
 * named events, the error event each protocol expects mid-stream, and errors before a stream in
 * the route protocol's envelope (an unknown path under Ollama's `/api/` answers in Ollama's shape).
 */
import { APIS_SERVED } from '../../src/http/server.js';
import { expect } from 'chai';
import uWS, { type HttpResponse, type us_listen_socket } from 'uWebSockets.js';
import { InferFluxError, errorBody } from '../../src/errors.js';
import { attachExchange } from '../../src/http/exchange.js';
import { ndjsonStream } from '../../src/http/ndjson.js';
import { sendError } from '../../src/http/respond.js';
import { sseFrame, sseStream } from '../../src/http/sse.js';
import { json, startServer, type TestServer } from './http-fixtures.js';

const flow = { maxBufferedBytes: 1 << 20, pause: () => undefined, resume: () => undefined };

describe('http: stream formats and error envelopes', () => {
  let socket: us_listen_socket | undefined;
  let base = '';

  before(async () => {
    const app = uWS.App()
      .get('/ndjson', (res: HttpResponse) => {
        attachExchange(res, 'r1');
        const s = ndjsonStream(res, flow);
        s.open();
        s.send({ data: { response: 'line\nbreak', done: false } });
        s.end([{ data: { done: true, done_reason: 'stop' } }]);
      })
      .get('/sse-named', (res: HttpResponse) => {
        attachExchange(res, 'r2');
        const s = sseStream(res, { ...flow, heartbeatSeconds: 60 });
        s.open();
        s.send({ event: 'message_start', data: { type: 'message_start' } });
        s.send({ data: 'two\nlines' });
        const err = new InferFluxError('worker_crashed');
        s.fail({ event: 'error', data: errorBody('anthropic', err) }, err);
      })
      .get('/ollama-error', (res: HttpResponse) => {
        const ex = attachExchange(res, 'r3');
        ex.protocol = 'ollama';
        sendError(res, new InferFluxError('model_not_found', "The model 'x' does not exist."));
      });
    base = await new Promise((resolve, reject) =>
      app.listen('127.0.0.1', 0, (s) => {
        if (!s) return reject(new Error('listen failed'));
        socket = s;
        resolve(`http://127.0.0.1:${uWS.us_socket_local_port(s as unknown as uWS.us_socket)}`);
      }),
    );
  });

  after(() => {
    if (socket) uWS.us_listen_socket_close(socket);
  });

  it('NDJSON: one JSON object per line, line breaks escaped, application/x-ndjson', async () => {
    const r = await fetch(`${base}/ndjson`);
    expect(r.headers.get('content-type')).to.equal('application/x-ndjson');
    const text = await r.text();
    expect(text).to.equal('{"response":"line\\nbreak","done":false}\n{"done":true,"done_reason":"stop"}\n');
  });

  it('SSE: named events, multi-line data split into data lines, a mid-stream error as the protocol\'s event', async () => {
    const r = await fetch(`${base}/sse-named`);
    expect(r.headers.get('content-type')).to.equal('text/event-stream');
    expect(await r.text()).to.equal(
      'event: message_start\ndata: {"type":"message_start"}\n\n' +
        'data: two\ndata: lines\n\n' +
        'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"The engine worker serving this request stopped; the request was not completed. Retry it."}}\n\n',
    );
  });

  it('SSE refuses an event name with a line break (it would inject a field)', () => {
    expect(() => sseFrame({ event: 'a\ndata: x', data: {} })).to.throw(/line break/);
  });

  it('errors before a stream use the route protocol\'s envelope', async () => {
    const r = await fetch(`${base}/ollama-error`);
    expect(r.status).to.equal(404);
    expect(await r.json()).to.deep.equal({ error: "The model 'x' does not exist." });
  });

  it('each protocol\'s envelope comes from the one table', () => {
    const err = new InferFluxError('rate_limited');
    expect(errorBody('openai', err)).to.deep.equal({ error: { message: err.message, type: 'rate_limit_error', param: null, code: 'rate_limited' } });
    expect(errorBody('ollama', err)).to.deep.equal({ error: err.message });
    expect(errorBody('anthropic', err)).to.deep.equal({ type: 'error', error: { type: 'rate_limit_error', message: err.message } });
  });

  describe('on the server', () => {
    let t: TestServer;
    before(async () => (t = await startServer()));
    after(() => t.server.close());

    it("an unknown path under Ollama's /api/ answers in Ollama's shape, OpenAI's paths in OpenAI's", async () => {
      const o = await fetch(`${t.base}/api/nothing-here`);
      expect(o.status).to.equal(404);
      expect(await o.json()).to.deep.equal({ error: `No route for GET /api/nothing-here. ${APIS_SERVED}` });
      const v = await fetch(`${t.base}/v1/nothing-here`);
      expect((await json(v)).error.code).to.equal('not_found');
      const a = await fetch(`${t.base}/v1/messages`);
      expect((await json(a)).type).to.equal('error');
    });
  });
});
