/**
 * The policy pipeline on the real HTTP edge (fake gateway): 401/403/429 with their headers, the
 * caller reaching the GenerateInput, token charging, CORS preflight, traceparent, audit events.
 */
import { expect } from 'chai';
import type { AuditEvent } from '../../src/audit/event.js';
import type { InferFluxConfig } from '../../src/config/types.js';
import { Metrics } from '../../src/metrics.js';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { toRecord } from '../../src/policy/api-keys.js';
import { createPolicyLayer } from '../../src/policy/pipeline.js';
import { PolicyService } from '../../src/policy/policy-service.js';
import { RateLimiterCore, type RateLimiter } from '../../src/policy/rate-limit.js';
import { RedisRateLimiter, type RedisFailMode } from '../../src/policy/rate-limit-redis.js';
import type { PolicyDocument, RateLimitPolicy } from '../../src/policy/types.js';
import { FakeGateway, json, rawRequest, testConfig } from './http-fixtures.js';

const GEN_KEY = 'sk-generate-key-0001';
const READ_KEY = 'sk-read-only-key-0002';
const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

interface PolicyServer {
  base: string;
  port: number;
  server: HttpServer;
  gateway: FakeGateway;
  policy: PolicyService;
  audit: AuditEvent[];
}

async function start(
  opts: { rateLimit?: Partial<RateLimitPolicy>; server?: Partial<InferFluxConfig['server']>; metricsPublic?: boolean; limiter?: (policy: PolicyService) => RateLimiter } = {},
): Promise<PolicyServer> {
  const keys = [
    toRecord({ key: GEN_KEY, scopes: ['generate', 'read'], tenant: 'team-a', priority: 3 }, 'config', 'k0'),
    toRecord({ key: READ_KEY, scopes: ['read'] }, 'config', 'k1'),
  ];
  const doc: PolicyDocument = {
    version: 0,
    updatedAt: new Date().toISOString(),
    apiKeys: keys,
    rateLimit: { requestsPerMinute: 0, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0, ...opts.rateLimit },
    guardrails: { blocklist: [], pii: { action: 'off', kinds: [] }, opaEndpoint: '', opaTimeoutMs: 500, opaFailMode: 'closed' },
  };
  const policy = new PolicyService(doc);
  const audit: AuditEvent[] = [];
  const pipeline = createPolicyLayer({
    authEnabled: true,
    metricsPublic: opts.metricsPublic ?? true,
    configKeys: keys,
    policy,
    oidc: null,
    audit: (e) => audit.push(e),
    ...(opts.limiter ? { limiter: opts.limiter(policy) } : {}),
  });
  const gateway = new FakeGateway();
  const server = createHttpServer({ config: testConfig(opts.server), gateway, metrics: new Metrics({ defaultMetrics: false }), pipeline });
  const port = await server.listen();
  return { base: `http://127.0.0.1:${port}`, port, server, gateway, policy, audit };
}

const chat = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] };

function post(t: PolicyServer, path: string, headers: Record<string, string>, body: unknown = chat) {
  return fetch(t.base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

describe('http: policy pipeline', () => {
  let t: PolicyServer;
  afterEach(() => t.server.close(100));

  /** A shared limiter whose Redis is unreachable (nothing listens on port 1): its fail mode decides. */
  const unreachable = (failMode: RedisFailMode) => (policy: PolicyService) =>
    new RedisRateLimiter({ url: 'redis://127.0.0.1:1', prefix: 't:', timeoutMs: 100, failMode, policy: () => policy.current.rateLimit, fallback: new RateLimiterCore(() => policy.current.rateLimit) });

  it('shared limiter unreachable, fail mode closed: 503 rate_limiter_unavailable with Retry-After, audited, nothing generated', async () => {
    t = await start({ rateLimit: { requestsPerMinute: 10 }, limiter: unreachable('closed') });
    const r = await post(t, '/v1/chat/completions', { authorization: `Bearer ${GEN_KEY}` });
    expect(r.status).to.equal(503);
    expect(r.headers.get('retry-after')).to.equal('1');
    expect((await json(r)).error).to.include({ code: 'rate_limiter_unavailable', type: 'service_unavailable' });
    expect(t.gateway.inputs).to.have.length(0);
    expect(t.audit.map((e) => [e.event, e.status, e.detail])).to.deep.equal([
      ['auth', 200, 'api_key'],
      ['denial', 503, 'rate limiter: rate_limiter_unavailable'],
    ]);
  });

  it('shared limiter unreachable, fail mode local: the request body survives the asynchronous admission', async () => {
    t = await start({ rateLimit: { requestsPerMinute: 1 }, limiter: unreachable('local') });
    const body = { ...chat, messages: [{ role: 'user', content: 'x'.repeat(30_000) }] };
    const r = await post(t, '/v1/chat/completions', { authorization: `Bearer ${GEN_KEY}` }, body);
    expect(r.status).to.equal(200);
    expect(r.headers.get('x-ratelimit-remaining-requests')).to.equal('0');
    expect(JSON.stringify(t.gateway.inputs[0])).to.contain('x'.repeat(30_000));
    const second = await post(t, '/v1/chat/completions', { authorization: `Bearer ${GEN_KEY}` });
    expect(second.status).to.equal(429);
  });

  it('401 without credentials: WWW-Authenticate, OpenAI shape, audit auth + denial with key id unknown', async () => {
    t = await start();
    const r = await post(t, '/v1/chat/completions', { traceparent: TRACE });
    expect(r.status).to.equal(401);
    expect(r.headers.get('www-authenticate')).to.equal('Bearer realm="inferflux"');
    expect(r.headers.get('traceparent')).to.equal(TRACE);
    expect(await json(r)).to.deep.equal({
      error: { message: 'Missing credentials: send Authorization: Bearer <key> or x-api-key.', type: 'authentication_error', param: null, code: 'unauthorized' },
    });
    expect(t.gateway.inputs).to.have.length(0);
    expect(t.audit.map((e) => [e.event, e.keyId, e.status, e.decision, e.detail, e.route, e.traceparent])).to.deep.equal([
      ['auth', 'unknown', 401, 'deny', 'missing_credentials', '/v1/chat/completions', TRACE],
      ['denial', 'unknown', 401, 'deny', 'missing_credentials', '/v1/chat/completions', TRACE],
    ]);
  });

  it('401 with a wrong key or scheme; the key never reaches an audit event', async () => {
    t = await start();
    const wrong = await post(t, '/v1/chat/completions', { authorization: 'Bearer sk-wrong-key-123456' });
    expect(wrong.status).to.equal(401);
    expect(wrong.headers.get('www-authenticate')).to.equal('Bearer realm="inferflux", error="invalid_token"');
    const basic = await post(t, '/v1/chat/completions', { authorization: 'Basic Zm9vOmJhcg==' });
    expect(basic.status).to.equal(401);
    expect(t.audit.filter((e) => e.event === 'auth').map((e) => e.detail)).to.deep.equal(['unknown_key', 'unsupported_auth_scheme']);
    const all = JSON.stringify(t.audit);
    expect(all).not.to.contain('sk-wrong-key-123456');
    expect(all).not.to.contain('Zm9vOmJhcg==');
  });

  it('403 for a read-only key on completions; 200 on /v1/models', async () => {
    t = await start();
    const r = await post(t, '/v1/completions', { 'x-api-key': READ_KEY }, { model: 'tiny', prompt: 'x' });
    expect(r.status).to.equal(403);
    expect((await json(r)).error).to.deep.equal({ message: 'This route needs scope generate.', type: 'permission_error', param: null, code: 'forbidden' });
    const m = await fetch(`${t.base}/v1/models`, { headers: { authorization: `Bearer ${READ_KEY}` } });
    expect(m.status).to.equal(200);
    expect(t.audit.map((e) => [e.event, e.status, e.detail])).to.deep.equal([
      ['auth', 200, 'api_key'],
      ['denial', 403, 'needs scope generate'],
      ['auth', 200, 'api_key'],
    ]);
  });

  it('a generate key works through both headers; key id, tenant, priority, traceparent and route reach the generation', async () => {
    t = await start();
    for (const h of [{ authorization: `Bearer ${GEN_KEY}` }, { 'x-api-key': GEN_KEY }] as Record<string, string>[]) {
      const r = await post(t, '/v1/chat/completions', { ...h, traceparent: TRACE });
      expect(r.status).to.equal(200);
      expect((await json(r)).choices[0].message.content).to.equal('Hello world');
    }
    const input = t.gateway.inputs[0]!;
    expect([input.keyId, input.tenant, input.priority, input.traceparent, input.route]).to.deep.equal([t.audit[0]!.keyId, 'team-a', 3, TRACE, '/v1/chat/completions']);
    expect(input.keyId).to.match(/^key:[0-9a-f]{12}$/);
  });

  it('public probes need no key; /metrics needs read when metrics_public is false', async () => {
    t = await start({ metricsPublic: false });
    expect((await fetch(`${t.base}/healthz`)).status).to.equal(200);
    expect((await fetch(`${t.base}/metrics`)).status).to.equal(401);
    expect((await fetch(`${t.base}/metrics`, { headers: { 'x-api-key': READ_KEY } })).status).to.equal(200);
    expect(t.audit.filter((e) => e.route === '/healthz')).to.have.length(0);
  });

  it('429 after the per-minute limit, with Retry-After and x-ratelimit headers; live limit change applies next request', async () => {
    t = await start({ rateLimit: { requestsPerMinute: 2 } });
    const h = { 'x-api-key': GEN_KEY };
    const first = await post(t, '/v1/chat/completions', h);
    expect(first.status).to.equal(200);
    expect([first.headers.get('x-ratelimit-limit-requests'), first.headers.get('x-ratelimit-remaining-requests')]).to.deep.equal(['2', '1']);
    expect((await post(t, '/v1/chat/completions', h)).status).to.equal(200);
    const r = await post(t, '/v1/chat/completions', h);
    expect(r.status).to.equal(429);
    expect(r.headers.get('retry-after')).to.equal('30');
    expect(r.headers.get('x-ratelimit-remaining-requests')).to.equal('0');
    const body = await json(r);
    expect(body.error.type).to.equal('rate_limit_error');
    expect(body.error.code).to.equal('rate_limited');
    expect(t.audit.at(-1)).to.include({ event: 'denial', status: 429, detail: 'rate limit: key requests per minute (2)' });
    await t.policy.update((d) => {
      d.rateLimit.requestsPerMinute = 0;
    });
    expect((await post(t, '/v1/chat/completions', h)).status).to.equal(200);
  });

  it('tokens per minute: prompt + completion are charged; the next request is refused while the bucket is empty', async () => {
    t = await start({ rateLimit: { tokensPerMinute: 7 } });
    const h = { 'x-api-key': GEN_KEY };
    expect((await post(t, '/v1/chat/completions', h)).status).to.equal(200); // 5 prompt + 2 completion
    const r = await post(t, '/v1/chat/completions', h);
    expect(r.status).to.equal(429);
    expect(Number(r.headers.get('retry-after'))).to.equal(9); // 1 token at 7/min
    expect(t.audit.at(-1)!.detail).to.equal('rate limit: key tokens per minute (7)');
  });

  it('tokens per minute: embeddings are charged their prompt tokens on every embeddings route', async () => {
    // Fake gateway: one token per character. 10 tokens per minute; "hello" costs 5.
    const routes: [string, unknown][] = [
      ['/v1/embeddings', { model: 'tiny', input: ['hel', 'lo'] }],
      ['/api/v0/embeddings', { model: 'tiny', input: 'hello' }],
      ['/api/embed', { model: 'tiny', input: 'hello' }],
      ['/api/embeddings', { model: 'tiny', prompt: 'hello' }],
    ];
    for (const [path, body] of routes) {
      t = await start({ rateLimit: { tokensPerMinute: 10 } });
      const h = { 'x-api-key': GEN_KEY };
      expect((await post(t, path, h, body)).status, path).to.equal(200);
      const second = await post(t, path, h, body);
      expect(second.status, path).to.equal(200);
      // 10 - 5 - 5 = 0 left: the third is refused.
      const r = await post(t, path, h, body);
      expect(r.status, path).to.equal(429);
      expect(t.audit.at(-1)!.detail).to.equal('rate limit: key tokens per minute (10)');
      expect(t.gateway.embedInputs.at(-1)).to.include({ keyId: t.audit.at(-1)!.keyId, tenant: 'team-a' });
      await t.server.close(100);
    }
  });

  it('CORS: preflight answered 204 before auth; allowed origins echoed on normal responses, others not', async () => {
    t = await start({ server: { cors: { allowedOrigins: ['https://app.example.com'], allowedHeaders: ['*'], maxAgeSeconds: 600 } } });
    const pre = await fetch(`${t.base}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-os' },
    });
    expect(pre.status).to.equal(204);
    expect(Object.fromEntries([...pre.headers].filter(([k]) => (k.startsWith('access-control') && k !== 'access-control-expose-headers') || k === 'vary'))).to.deep.equal({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'POST, OPTIONS',
      'access-control-allow-headers': 'authorization, content-type, x-stainless-os',
      'access-control-max-age': '600',
      vary: 'Origin',
    });
    expect(t.audit).to.have.length(0);
    const denied = await post(t, '/v1/chat/completions', { origin: 'https://app.example.com' });
    expect(denied.status).to.equal(401);
    expect(denied.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
    const ok = await post(t, '/v1/chat/completions', { origin: 'https://app.example.com', 'x-api-key': GEN_KEY });
    expect(ok.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
    expect(ok.headers.get('access-control-expose-headers')).to.contain('x-request-id');
    const evil = await post(t, '/v1/chat/completions', { origin: 'https://evil.example', 'x-api-key': GEN_KEY });
    expect(evil.headers.get('access-control-allow-origin')).to.equal(null);
    const evilPre = await fetch(`${t.base}/v1/models`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect(evilPre.status).to.equal(204);
    expect(evilPre.headers.get('access-control-allow-origin')).to.equal(null);
    expect((await fetch(`${t.base}/nope`, { method: 'OPTIONS' })).status).to.equal(404);
  });

  it('traceparent: a valid one is echoed, an invalid one replaced by a fresh valid one', async () => {
    t = await start();
    const ok = await fetch(`${t.base}/healthz`, { headers: { traceparent: TRACE } });
    expect(ok.headers.get('traceparent')).to.equal(TRACE);
    const bad = await fetch(`${t.base}/healthz`, { headers: { traceparent: 'zz-bad' } });
    expect(bad.headers.get('traceparent')).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('path tricks are judged after normalisation: /v1/models/../admin/x needs admin', async () => {
    t = await start();
    const r = await rawRequest(t.port, `GET /v1/models/%2e%2e/admin/api_keys HTTP/1.1\r\nHost: localhost\r\nx-api-key: ${READ_KEY}\r\nConnection: close\r\n\r\n`);
    expect([403, 404]).to.include(r.status);
    if (r.status === 403) expect(JSON.parse(r.body).error.code).to.equal('forbidden');
  });
});
