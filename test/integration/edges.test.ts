/**
 * The HTTP edge against the real server: what a client gets at each limit (queue, host, nesting,
 * headers, idle connections), every answer in OpenAI's error shape.
 */
import { expect } from 'chai';
import { request } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';

interface OpenAIError {
  error: { message: string; type: string; param: string | null; code: string };
}

async function send(url: string, method: string, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(url + path, { method, headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as OpenAIError & Record<string, unknown> };
}

/** One request with a Host header of our choosing (fetch does not let a caller set it). */
function withHost(port: number, method: string, path: string, host: string, body?: string) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: OpenAIError & Record<string, unknown> }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `head` on a raw socket; what came back before the server closed or `waitMs` passed. */
function rawExchange(port: number, head: string, waitMs: number): Promise<{ text: string; end: 'closed' | 'reset' | 'open' }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    const done = (end: 'closed' | 'reset' | 'open') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, end });
    };
    const timer = setTimeout(() => done('open'), waitMs);
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => done('closed'));
    socket.on('error', () => done('reset'));
    socket.write(head);
  });
}

/** Every route that reads a JSON body. */
const BODY_ROUTES: [string, string][] = [
  ['POST', '/v1/chat/completions'],
  ['POST', '/api/v0/chat/completions'],
  ['POST', '/v1/completions'],
  ['POST', '/api/v0/completions'],
  ['PUT', '/v1/admin/guardrails'],
  ['PUT', '/v1/admin/rate_limit'],
  ['POST', '/v1/admin/api_keys'],
  ['PUT', '/v1/admin/fairness'],
  ['POST', '/v1/admin/cache'],
];

describe('request edges on the real server (default config, open loopback mode)', function () {
  this.timeout(120_000);
  let server: RunningServer;

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('a foreign Host (DNS rebinding) can neither read nor change admin settings; the loopback names can', async () => {
    const foreign = (host: string) => ({
      error: {
        message: `The Host header ${JSON.stringify(host)} is not one this server answers for; an operator can add it to server.allowed_hosts (INFERFLUX_ALLOWED_HOSTS).`,
        type: 'invalid_request_error',
        param: null,
        code: 'host_not_allowed',
      },
    });
    const before = await withHost(server.port, 'GET', '/v1/admin/guardrails', `localhost:${server.port}`);
    expect(before.status).to.equal(200);
    for (const host of [`rebind.attacker.example:${server.port}`, 'rebind.attacker.example', `127.0.0.1.nip.io:${server.port}`]) {
      const read = await withHost(server.port, 'GET', '/v1/admin/guardrails', host);
      expect({ status: read.status, body: read.body }).to.deep.equal({ status: 421, body: foreign(host) });
      const write = await withHost(server.port, 'PUT', '/v1/admin/guardrails', host, JSON.stringify({ blocklist: ['pwned'] }));
      expect({ status: write.status, body: write.body }).to.deep.equal({ status: 421, body: foreign(host) });
      const key = await withHost(server.port, 'POST', '/v1/admin/api_keys', host, JSON.stringify({ scopes: ['admin'] }));
      expect(key.status).to.equal(421);
    }
    for (const host of [`127.0.0.1:${server.port}`, `[::1]:${server.port}`, 'LOCALHOST']) {
      const r = await withHost(server.port, 'GET', '/v1/admin/guardrails', host);
      expect({ host, status: r.status, body: r.body }).to.deep.equal({ host, status: 200, body: before.body });
    }
    expect((await withHost(server.port, 'GET', '/v1/admin/api_keys', 'localhost')).body).to.deep.include({ data: [] });
  });

  it('a request head over server.max_header_bytes (16 KiB) is 431 headers_too_large in OpenAI shape, then closed', async () => {
    const head = (pad: number, extra = '') => `GET /v1/models HTTP/1.1\r\nHost: localhost\r\n${extra}x-pad: ${'a'.repeat(pad)}\r\n\r\n`;
    const fits = await rawExchange(server.port, head(16_000), 1500);
    expect(fits.text).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(fits.text).to.match(/\r\nkeep-alive: timeout=7\r\n/i);
    expect(fits.end, 'a request that fits keeps its keep-alive connection').to.equal('open');
    for (const [pad, extra] of [[20_000, ''], [100, Array.from({ length: 40 }, (_, i) => `x-h${i}: ${'v'.repeat(500)}\r\n`).join('')]] as const) {
      const r = await rawExchange(server.port, head(pad, extra), 5000);
      const [status, ...rest] = r.text.split('\r\n');
      expect(status).to.equal('HTTP/1.1 431 Request Header Fields Too Large');
      const body = JSON.parse(rest.slice(rest.indexOf('') + 1).join('\r\n')) as OpenAIError;
      expect(body.error).to.include({ code: 'headers_too_large', type: 'invalid_request_error', param: null });
      expect(body.error.message).to.match(/^The request line and headers take \d+ bytes, more than the 16384 server\.max_header_bytes allows\.$/);
      expect(r.end).to.equal('closed');
    }
  });

  it('uWebSockets.js limits we cannot change: idle keep-alive closed 8-12 s after a response; 49+ header lines unanswered; ~128 KiB heads reset', async () => {
    // The idle close runs meanwhile: uWS compiles in 10 s, checked on a 4 s timer.
    const idle = (async () => {
      const t0 = Date.now();
      const r = await rawExchange(server.port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n', 20_000);
      return { r, seconds: (Date.now() - t0) / 1000 };
    })();
    const lines = (n: number) => `GET /v1/models HTTP/1.1\r\nHost: localhost\r\n${Array.from({ length: n - 1 }, (_, i) => `x-h${i}: v\r\n`).join('')}\r\n`;
    expect((await rawExchange(server.port, lines(48), 1500)).text).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(await rawExchange(server.port, lines(49), 1000)).to.deep.equal({ text: '', end: 'open' }); // closed by uWS's 10 s idle timeout
    const huge = await rawExchange(server.port, `GET /v1/models HTTP/1.1\r\nHost: localhost\r\nx-pad: ${'a'.repeat(140_000)}\r\n\r\n`, 3000);
    expect(huge.text).to.equal('');
    expect(huge.end).to.not.equal('open');
    const { r, seconds } = await idle;
    expect(r.text).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.end).to.equal('closed');
    expect(seconds).to.be.within(7.5, 13);
  });

  it('a body nested 10,000 arrays or objects deep is 400 invalid_request naming the limit on every JSON route', async () => {
    const tooDeep = {
      error: {
        message: 'The request body nests arrays and objects more than 64 levels deep (the limit).',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_request',
      },
    };
    const arrays = '['.repeat(10_000) + ']'.repeat(10_000);
    const objects = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    for (const [method, path] of BODY_ROUTES) {
      for (const body of [arrays, objects, `{"messages":${arrays},"prompt":${arrays}}`]) {
        const r = await send(server.url, method, path, body);
        expect({ route: `${method} ${path}`, status: r.status, body: r.body }).to.deep.equal({ route: `${method} ${path}`, status: 400, body: tooDeep });
      }
    }
    // 64 levels pass the depth check and reach validation, which names the unknown field.
    const messages = [{ role: 'user', content: 'x' }];
    const at64 = `{"messages":${JSON.stringify(messages)},"max_tokens":1,"extra":${'['.repeat(63)}${']'.repeat(63)}}`;
    const r64 = await send(server.url, 'POST', '/v1/chat/completions', at64);
    expect(r64.status).to.equal(400);
    expect((r64.body as { error: { param: string } }).error.param).to.equal('extra');
    const at65 = `{"messages":${JSON.stringify(messages)},"max_tokens":1,"extra":${'['.repeat(64)}${']'.repeat(64)}}`;
    expect((await send(server.url, 'POST', '/v1/chat/completions', at65)).body).to.deep.equal(tooDeep);
  });
});

describe('queue_full on the real server', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-edges-'));
    const cfg = join(dir, 'server.yaml');
    // One sequence and no queue: a second request while one runs is refused at once.
    writeFileSync(cfg, 'runtime:\n  sequences_per_worker: 1\n  threads_per_worker: 1\nscheduler:\n  decode_pool_size: 1\n  max_queue: 0\n');
    server = await startServer({ INFERFLUX_CONFIG: cfg });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a non-streaming request refused by the scheduler gets 429 queue_full with Retry-After', async () => {
    const busy = new AbortController();
    const first = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Keep the only sequence busy', max_tokens: 2000, ignore_eos: true, stream: true }),
      signal: busy.signal,
    });
    expect(first.status).to.equal(200);
    const reader = first.body!.getReader();
    await reader.read(); // generating now: the one sequence is taken
    try {
      const res = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x', max_tokens: 4 }),
      });
      const body = (await res.json()) as { error: { code: string; type: string; param: string | null; message: string } };
      expect(res.status).to.equal(429);
      expect(res.headers.get('retry-after')).to.equal('1');
      expect(body.error).to.deep.equal({ code: 'queue_full', type: 'rate_limit_error', param: null, message: "The queue for model 'tiny-seed0' is full." });
    } finally {
      busy.abort();
      await reader.cancel().catch(() => undefined);
    }
  });
});
