import { APIS_SERVED } from '../../src/http/server.js';
import net from 'node:net';
import { expect } from 'chai';
import { CREATED, get, json, rawRequest, startServer, type FakeHandle, type TestServer } from './http-fixtures.js';

function postHead(path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `POST ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${lines}\r\n`;
}

describe('http: edge', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await startServer({ maxBodyBytes: 4096 });
  });
  afterEach(() => t.server.close(100));

  describe('bodies', () => {
    const chat = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });

    it('answers 413 from content-length before reading the body', async () => {
      const r = await fetch(`${t.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(5000) }] }),
      }).catch((err: Error) => err);
      // undici may see the early close before the answer; the raw test below checks the bytes.
      if (!(r instanceof Error)) {
        expect(r.status).to.equal(413);
        expect((await json(r)).error.code).to.equal('request_too_large');
      }
      const raw = await rawRequest(t.port, postHead('/v1/chat/completions', { 'content-type': 'application/json', 'content-length': 5000 }));
      expect(raw.status).to.equal(413);
      expect(JSON.parse(raw.body).error).to.deep.equal({
        message: 'The request body exceeds 4096 bytes.',
        type: 'invalid_request_error',
        param: null,
        code: 'request_too_large',
      });
    });

    it('answers 413 while counting a chunked body that has no content-length', async () => {
      const head = postHead('/v1/chat/completions', { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      const part = 'x'.repeat(3000);
      const chunk = `${part.length.toString(16)}\r\n${part}\r\n`;
      const raw = await rawRequest(t.port, head, chunk + chunk + '0\r\n\r\n');
      expect(raw.status).to.equal(413);
      expect(t.gateway.inputs).to.have.length(0);
    });

    it('415 for a non-JSON content-type; missing and curl-default content-types are accepted', async () => {
      const r = await fetch(`${t.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: chat });
      expect(r.status).to.equal(415);
      expect((await json(r)).error.code).to.equal('unsupported_media_type');
      const none = await rawRequest(t.port, postHead('/v1/chat/completions', { 'content-length': chat.length }), chat);
      expect(none.status).to.equal(200);
      const form = await fetch(`${t.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: chat,
      });
      expect(form.status).to.equal(200);
    });

    it('an empty body is invalid_json', async () => {
      const r = await rawRequest(t.port, postHead('/v1/completions', { 'content-type': 'application/json', 'content-length': 0 }));
      expect(r.status).to.equal(400);
      expect(JSON.parse(r.body).error.code).to.equal('invalid_json');
    });
  });

  describe('routing', () => {
    it('404 not_found for unknown routes', async () => {
      const r = await fetch(`${t.base}/v2/nothing`);
      expect(r.status).to.equal(404);
      expect(await json(r)).to.deep.equal({
        error: { message: `No route for GET /v2/nothing. ${APIS_SERVED}`, type: 'invalid_request_error', param: null, code: 'not_found' },
      });
    });

    it('405 with Allow for a known path and the wrong method', async () => {
      const r = await fetch(`${t.base}/v1/chat/completions`);
      expect(r.status).to.equal(405);
      expect(r.headers.get('allow')).to.equal('POST');
      expect((await json(r)).error.code).to.equal('method_not_allowed');
    });

    it('normalises //, .., %2e%2e and trailing slashes one way before routing', async () => {
      for (const p of ['//v1/models', '/v1/../v1/models', '/v1/%2e%2e/v1/models', '/v1/%2E%2E/v1/./models/', '/../../v1/models', '/v1/models?limit=1']) {
        const r = await rawRequest(t.port, get(p));
        expect(r.status, p).to.equal(200);
        expect(JSON.parse(r.body).object, p).to.equal('list');
      }
      // `..` can climb out of a prefix: the router sees where it really lands.
      const up = await rawRequest(t.port, get('/v1/models/..%2f..%2fhealthz'));
      expect(up.status).to.equal(404);
      expect(JSON.parse(up.body).error.code).to.equal('model_not_found');
      const climb = await rawRequest(t.port, get('/v1/models/../../healthz'));
      expect(JSON.parse(climb.body)).to.deep.equal({ status: 'ok' });
      const bad = await rawRequest(t.port, get('/v1/%zz'));
      expect(bad.status).to.equal(400);
    });

    it('echoes a sane x-request-id and replaces an unsafe one', async () => {
      const ok = await fetch(`${t.base}/healthz`, { headers: { 'x-request-id': 'abc.DEF_1-2' } });
      expect(ok.headers.get('x-request-id')).to.equal('abc.DEF_1-2');
      const bad = await fetch(`${t.base}/healthz`, { headers: { 'x-request-id': 'a b<script>' } });
      expect(bad.headers.get('x-request-id')).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
      const long = await fetch(`${t.base}/healthz`, { headers: { 'x-request-id': 'a'.repeat(129) } });
      expect(long.headers.get('x-request-id')).to.not.equal('a'.repeat(129));
    });
  });

  describe('models', () => {
    it('lists models the OpenAI and LM Studio ways', async () => {
      expect(await json(await fetch(`${t.base}/v1/models`))).to.deep.equal({
        object: 'list',
        data: [
          {
            id: 'tiny',
            object: 'model',
            created: CREATED,
            owned_by: 'inferflux',
            state: 'ready',
            ready: true,
            default: true,
            capabilities: { chat: true, completion: true, embeddings: false, tools: true, vision: false },
            backend_exposure: { requested: 'cpu', exposed: 'cpu', provenance: 'config', skipped: [] },
          },
        ],
      });
      expect(await json(await fetch(`${t.base}/v1/models/tiny`))).to.deep.equal({
        id: 'tiny',
        object: 'model',
        created: CREATED,
        owned_by: 'inferflux',
        state: 'ready', ready: true, default: true, capabilities: { chat: true, completion: true, embeddings: false, tools: true, vision: false },
        backend_exposure: { requested: 'cpu', exposed: 'cpu', provenance: 'config', skipped: [] },
        metadata: { architecture: 'llama', parameter_count: 1000, quantization: 'F32', context_length: 4096, is_moe: false, n_experts: 0, n_active_experts: 0, chat_template: '' },
      });
      expect(await json(await fetch(`${t.base}/api/v0/models`))).to.deep.equal({
        object: 'list',
        data: [
          {
            id: 'tiny',
            object: 'model',
            type: 'llm',
            publisher: 'inferflux',
            arch: 'llama',
            compatibility_type: 'gguf',
            quantization: 'F32',
            state: 'loaded',
            max_context_length: 4096,
          },
        ],
      });
      const missing = await fetch(`${t.base}/v1/models/nope`);
      expect(missing.status).to.equal(404);
      expect((await json(missing)).error).to.include({ code: 'model_not_found', param: 'model' });
    });
  });

  describe('ops', () => {
    it('healthz and livez are 200 ok', async () => {
      for (const p of ['/healthz', '/livez']) {
        const r = await fetch(t.base + p);
        expect(r.status).to.equal(200);
        expect(await json(r)).to.deep.equal({ status: 'ok' });
      }
    });

    it('readyz is 503 until the gateway is ready, with the report as body', async () => {
      t.gateway.ready = false;
      const down = await fetch(`${t.base}/readyz`);
      expect(down.status).to.equal(503);
      expect(await json(down)).to.deep.equal(t.gateway.readiness());
      t.gateway.ready = true;
      const up = await fetch(`${t.base}/readyz`);
      expect(up.status).to.equal(200);
      expect((await json(up)).ready).to.equal(true);
    });

    it('metrics render with request counters by route, model, backend and status', async () => {
      await fetch(`${t.base}/v1/models/nope`);
      await fetch(`${t.base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"x"}' });
      const r = await fetch(`${t.base}/metrics`);
      expect(r.status).to.equal(200);
      expect(r.headers.get('content-type')).to.equal(t.metrics.contentType);
      const text = await r.text();
      expect(text).to.contain('inferflux_requests_total{route="/v1/models/:id",model="none",backend="cpu",status="404"} 1');
      expect(text).to.contain('inferflux_requests_total{route="/v1/completions",model="tiny",backend="cpu",status="200"} 1');
      expect(text).to.contain('inferflux_errors_total{model="none",code="model_not_found"} 1');
      expect(text).to.contain('inferflux_request_latency_seconds_count{model="tiny"} 1');
    });
  });

  describe('SSE backpressure', () => {
    it('pauses the generation for a slow reader and resumes when it catches up', async function () {
      this.timeout(30000);
      await t.server.close(10);
      t = await startServer({ sseMaxBufferedBytes: 64 * 1024 });
      const piece = 'y'.repeat(16 * 1024);
      const total = 2000; // 32 MiB: far more than loopback socket buffers hold
      let emitted = 0;
      let pausedAt = -1;
      let handle: FakeHandle | undefined;
      t.gateway.script = (_i, sink, h) => {
        handle = h;
        sink.onStart({ model: 'tiny', promptTokens: 1, created: CREATED });
        const step = () => {
          if (h.cancelled) return;
          if (h.paused) {
            if (pausedAt < 0) pausedAt = emitted;
            void h.changed().then(step);
            return;
          }
          if (emitted === total) {
            sink.onChoiceEnd(0, 'length', total);
            sink.onEnd({ promptTokens: 1, completionTokens: total, cachedTokens: 0 });
            return;
          }
          sink.onText(0, piece);
          emitted++;
          setImmediate(step);
        };
        step();
      };

      const body = JSON.stringify({ prompt: 'x', stream: true });
      const sock = net.connect(t.port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.pause(); // the slow reader: nothing is read until the server had to pause
      sock.write(postHead('/v1/completions', { 'content-type': 'application/json', 'content-length': body.length }) + body);
      while (!handle || handle.pauses === 0) await new Promise((r) => setTimeout(r, 10));
      expect(handle.paused).to.equal(true);
      expect(emitted).to.be.lessThan(total);
      // Paused well before everything was produced: memory stays bounded by the socket buffers.
      const atPause = emitted;
      await new Promise((r) => setTimeout(r, 100));
      expect(emitted).to.equal(atPause);

      let received = 0;
      let tail = '';
      const done = new Promise<void>((resolve) => {
        sock.on('data', (d: Buffer) => {
          received += d.length;
          tail = (tail + d.toString('latin1')).slice(-200);
          if (tail.includes('data: [DONE]')) resolve();
        });
      });
      sock.resume();
      await done;
      sock.destroy();
      expect(handle.resumes).to.be.greaterThan(0);
      expect(emitted).to.equal(total);
      expect(received).to.be.greaterThan(total * piece.length);
      expect(pausedAt).to.be.greaterThan(0);
    });

    it('sends a heartbeat comment on an idle stream', async function () {
      this.timeout(10000);
      await t.server.close(10);
      t = await startServer({ sseHeartbeatSeconds: 1 });
      t.gateway.script = (_i, sink, h) => {
        sink.onStart({ model: 'tiny', promptTokens: 1, created: CREATED });
        setTimeout(() => {
          if (h.cancelled) return;
          sink.onChoiceEnd(0, 'stop', 0);
          sink.onEnd({ promptTokens: 1, completionTokens: 0, cachedTokens: 0 });
        }, 1600);
      };
      const r = await fetch(`${t.base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x', stream: true }),
      });
      const text = await r.text();
      expect(text).to.contain(': ping\n\n');
      expect(text.endsWith('data: [DONE]\n\n')).to.equal(true);
    });
  });

  describe('close', () => {
    it('stops accepting, lets in-flight requests finish, then refuses new connections', async () => {
      t.gateway.script = (input, sink, h) => {
        sink.onStart({ model: 'tiny', promptTokens: 1, created: CREATED });
        setTimeout(() => {
          if (h.cancelled) return;
          sink.onText(0, 'late');
          sink.onChoiceEnd(0, 'stop', 1);
          sink.onEnd({ promptTokens: 1, completionTokens: 1, cachedTokens: 0 });
        }, 150);
        void input;
      };
      const pending = fetch(`${t.base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x' }),
      });
      await new Promise((r) => setTimeout(r, 30));
      const closed = t.server.close(2000);
      const r = await pending;
      expect(r.status).to.equal(200);
      expect((await json(r)).choices[0].text).to.equal('late');
      await closed;
      expect(t.gateway.handles[0]!.cancelled).to.equal(false);
      // A kept-alive connection may still deliver one more request: it gets 503 and is closed.
      const late = await fetch(`${t.base}/healthz`).catch((err: Error) => err);
      if (!(late instanceof Error)) {
        expect(late.status).to.equal(503);
        expect(late.headers.get('connection')).to.equal('close');
        expect((await json(late)).error.code).to.equal('shutting_down');
      }
      // New connections are refused.
      const refused = await new Promise<Error | null>((resolve) => {
        const s = net.connect(t.port, '127.0.0.1', () => {
          s.destroy();
          resolve(null);
        });
        s.on('error', resolve);
      });
      expect(refused).to.be.instanceOf(Error);
    });
  });
});
