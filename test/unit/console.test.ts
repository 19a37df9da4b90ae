/**
 * The operations console's pieces: the bounded ring, the feed that picks what the console shows
 * (and never copies a prompt or a key), and the console API on the real HTTP edge with the real
 * policy pipeline (fake gateway): the snapshot's shape, admin-only access (403 for other keys on
 * both routes), and the SSE stream's first snapshot.
 */
import { expect } from 'chai';
import type { AuditEvent } from '../../src/audit/event.js';
import { ConsoleFeed, type RequestRecord } from '../../src/http/console-feed.js';
import { RingBuffer } from '../../src/runtime/ring-buffer.js';
import { Metrics } from '../../src/metrics.js';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { toRecord } from '../../src/policy/api-keys.js';
import { createPolicyLayer } from '../../src/policy/pipeline.js';
import { PolicyService } from '../../src/policy/policy-service.js';
import type { PolicyDocument } from '../../src/policy/types.js';
import { MAX_STREAMS } from '../../src/http/routes/console/live.js';
import { FakeGateway, json, testConfig } from './http-fixtures.js';

const ADMIN_KEY = 'sk-console-admin-0001';
const USER_KEY = 'sk-console-user-0002';

function req(route: string, n = 0): RequestRecord {
  return {
    at: '2026-01-01T00:00:00.000Z',
    request_id: `r${n}`,
    trace_id: '0'.repeat(32),
    method: 'POST',
    route,
    status: 200,
    latency_ms: 1,
    model: 'tiny',
    tokens_in: 3,
    tokens_out: 2,
    ttft_ms: 0.5,
    key_id: 'key:abc',
    tenant: 'default',
    error_code: null,
  };
}

describe('console: ring buffer', () => {
  it('keeps the last `capacity` entries, newest first, and counts every push', () => {
    const r = new RingBuffer<number>(3);
    expect(r.newestFirst()).to.deep.equal([]);
    r.push(1);
    r.push(2);
    expect(r.newestFirst()).to.deep.equal([2, 1]);
    for (let i = 3; i <= 10; i++) r.push(i);
    expect(r.newestFirst()).to.deep.equal([10, 9, 8]);
    expect([r.size, r.total, r.capacity]).to.deep.equal([3, 10, 3]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    for (const c of [0, -1, 1.5, Number.NaN]) expect(() => new RingBuffer(c)).to.throw(RangeError);
  });
});

describe('console: feed', () => {
  it('lists requests in bounded memory and skips its own page and API', () => {
    const feed = new ConsoleFeed({ requests: 2 });
    feed.request(req('/v1/chat/completions', 1));
    feed.request(req('/v1/admin/console', 2));
    feed.request(req('/v1/admin/console/events', 3));
    feed.request(req('/ui/:file', 4));
    feed.request(req('/v1/models', 5));
    feed.request(req('/v1/completions', 6));
    const v = feed.view();
    expect(v.requests.map((r) => r.request_id)).to.deep.equal(['r6', 'r5']);
    expect(v.totals.requests).to.equal(3);
  });

  it('takes guardrail denials and limit refusals from audit events, without the prompt; ignores the rest', () => {
    const feed = new ConsoleFeed();
    const inner: AuditEvent[] = [];
    const sink = feed.tee({ record: (e) => inner.push(e) });
    const base = { ts: '2026-01-01T00:00:00.000Z', requestId: 'q1', route: '/v1/chat/completions', keyId: 'key:abc', tenant: 't' };
    const events: AuditEvent[] = [
      { ...base, event: 'denial', status: 400, decision: 'guardrail:blocklist', model: 'tiny', prompt: 'the secret prompt text', detail: 'prompt' },
      { ...base, event: 'denial', status: 400, decision: 'guardrail:pii_email', model: 'tiny', prompt: 'a@b.c', detail: 'output' },
      { ...base, event: 'denial', status: 429, decision: 'deny', detail: 'rate limit: key requests per minute (1)' },
      { ...base, event: 'denial', status: 403, decision: 'deny', detail: 'needs scope admin' },
      { ...base, event: 'completion', status: 200, decision: 'allow', prompt: 'another prompt' },
    ];
    for (const e of events) sink.record(e);
    expect(inner).to.deep.equal(events);
    const v = feed.view();
    expect(v.guardrails).to.deep.equal([
      { at: base.ts, action: 'deny', stage: 'output', reason: 'pii_email', model: 'tiny', request_id: 'q1', route: base.route, key_id: 'key:abc', tenant: 't' },
      { at: base.ts, action: 'deny', stage: 'prompt', reason: 'blocklist', model: 'tiny', request_id: 'q1', route: base.route, key_id: 'key:abc', tenant: 't' },
    ]);
    expect(v.limits).to.deep.equal([{ at: base.ts, status: 429, detail: 'rate limit: key requests per minute (1)', request_id: 'q1', route: base.route, key_id: 'key:abc', tenant: 't' }]);
    expect(v.totals).to.deep.include({ guardrail_denials: 2, limit_refusals: 1 });
    expect(JSON.stringify(v)).to.not.match(/secret prompt|a@b\.c|another prompt/);
  });

  it('keeps the last budget of at most `keys` keys, least recently seen forgotten first', () => {
    const feed = new ConsoleFeed({ keys: 2 });
    const h = (n: number) => ({ 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': String(n) });
    feed.budget('key:a', 't', h(9));
    feed.budget('key:b', 't', h(8));
    feed.budget('key:a', 't', h(7));
    feed.budget('key:c', 't', h(6));
    feed.budget('key:d', 't', {});
    feed.budget(undefined, undefined, h(1));
    expect(feed.view().keys.map((k) => [k.key_id, k.requests, k.tokens])).to.deep.equal([
      ['key:c', { limit: 10, remaining: 6 }, null],
      ['key:a', { limit: 10, remaining: 7 }, null],
    ]);
  });

  it('records redactions with their kinds and runs shutdown hooks once', () => {
    const feed = new ConsoleFeed();
    feed.redaction({ stage: 'prompt', reason: 'email,phone', request_id: 'q', route: '/v1/chat/completions', model: null, key_id: null, tenant: null });
    expect(feed.view().guardrails[0]).to.deep.include({ action: 'redact', stage: 'prompt', reason: 'email,phone' });
    expect(feed.view().totals.guardrail_redactions).to.equal(1);
    let n = 0;
    feed.onShutdown(() => n++);
    feed.shutdown();
    feed.shutdown();
    expect(n).to.equal(1);
  });
});

describe('console: API on the HTTP edge', () => {
  let server: HttpServer;
  let base: string;

  before(async () => {
    const keys = [toRecord({ key: ADMIN_KEY, scopes: ['admin'] }, 'config', 'k0'), toRecord({ key: USER_KEY, scopes: ['generate', 'read'], tenant: 'team-a' }, 'config', 'k1')];
    const doc: PolicyDocument = {
      version: 0,
      updatedAt: new Date().toISOString(),
      apiKeys: keys,
      rateLimit: { requestsPerMinute: 100, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0 },
      guardrails: { blocklist: ['forbidden-word'], pii: { action: 'off', kinds: [] }, opaEndpoint: '', opaTimeoutMs: 500, opaFailMode: 'closed' },
    };
    const policy = new PolicyService(doc);
    const pipeline = createPolicyLayer({ authEnabled: true, metricsPublic: true, configKeys: keys, policy, oidc: null, audit: () => undefined });
    server = createHttpServer({ config: testConfig(), gateway: new FakeGateway(), metrics: new Metrics({ defaultMetrics: false }), pipeline, policy });
    base = `http://127.0.0.1:${await server.listen()}`;
  });
  after(() => server.close(100));

  const get = (path: string, key: string | null) => fetch(base + path, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  for (const path of ['/v1/admin/console', '/v1/admin/console/events']) {
    it(`GET ${path}: 401 without a key, 403 for a non-admin key`, async () => {
      const none = await get(path, null);
      expect(none.status).to.equal(401);
      await none.body?.cancel();
      const user = await get(path, USER_KEY);
      expect(user.status).to.equal(403);
      expect((await json(user)).error).to.deep.equal({ message: 'This route needs scope admin.', type: 'permission_error', param: null, code: 'forbidden' });
    });
  }

  it('GET /v1/admin/console: the snapshot, with the requests seen so far and no secret', async () => {
    const models = await get('/v1/models', USER_KEY);
    expect(models.status).to.equal(200);
    await models.body?.cancel();
    const r = await get('/v1/admin/console', ADMIN_KEY);
    expect(r.status).to.equal(200);
    expect(r.headers.get('cache-control')).to.equal('no-store');
    const text = await r.text();
    expect(text).to.not.include(ADMIN_KEY).and.not.include(USER_KEY).and.not.include('forbidden-word');
    const s = JSON.parse(text);
    expect(Object.keys(s).sort()).to.deep.equal(
      ['auth', 'guardrails', 'kv', 'models', 'object', 'pools', 'prefix_cache', 'rate_limit', 'requests', 'running', 'scheduler', 'time', 'tokens', 'totals', 'uptime_s', 'version'].sort(),
    );
    expect(s.object).to.equal('console.snapshot');
    expect(s.auth).to.equal('on');
    expect(s.models.map((m: { id: string }) => m.id)).to.deep.equal(['tiny']);
    expect(s.scheduler.models).to.deep.equal([{ model: 'tiny', queue_depth: 0, prefill_queue_depth: 0, decode_queue_depth: 0, running_sequences: 0, prefill_sequences: 0 }]);
    expect(s.prefix_cache).to.deep.equal({ hits: 0, partial_hits: 0, misses: 0, matched_tokens: 0, hit_rate: null });
    expect(s.guardrails).to.deep.equal({ active: false, blocklist_terms: 1, pii_action: 'off', pii_kinds: [], external_engine: false, recent: [] });
    expect(s.rate_limit).to.deep.include({ backend: 'local', limits: { requests_per_minute: 100, tokens_per_minute: 0, tenant_requests_per_minute: 0, tenant_tokens_per_minute: 0 } });
    // The model listing is there, with the caller's id and budget; the console's own requests are not.
    expect(s.requests).to.have.length(1);
    expect(s.requests[0]).to.deep.include({ method: 'GET', route: '/v1/models', status: 200, key_id: toRecord({ key: USER_KEY, scopes: ['read'] }, 'config', 'x').id, tenant: 'team-a', ttft_ms: null });
    expect(s.rate_limit.keys).to.have.length(1);
    expect(s.rate_limit.keys[0]).to.deep.include({ requests: { limit: 100, remaining: 99 }, tokens: null });
  });

  it('GET /v1/admin/console/events: an SSE stream whose first event is a snapshot', async () => {
    const ac = new AbortController();
    const r = await fetch(base + '/v1/admin/console/events', { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: ac.signal });
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.equal('text/event-stream');
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    while (!buf.includes('\n\n')) buf += (await reader.read()).value ?? '';
    const event = buf.slice(0, buf.indexOf('\n\n'));
    expect(event.split('\n')[0]).to.equal('event: snapshot');
    expect(JSON.parse(event.split('\n')[1]!.slice('data: '.length)).object).to.equal('console.snapshot');
    ac.abort();
  });
});

describe('console: open mode and stream limits', () => {
  it('with auth off (loopback, no keys) the console API needs no key and says auth is off', async () => {
    const policy = new PolicyService({
      version: 0,
      updatedAt: new Date().toISOString(),
      apiKeys: [],
      rateLimit: { requestsPerMinute: 0, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0 },
      guardrails: { blocklist: [], pii: { action: 'off', kinds: [] }, opaEndpoint: '', opaTimeoutMs: 500, opaFailMode: 'closed' },
    });
    const pipeline = createPolicyLayer({ authEnabled: false, metricsPublic: true, configKeys: [], policy, oidc: null, audit: () => undefined });
    const server = createHttpServer({ config: testConfig(), gateway: new FakeGateway(), metrics: new Metrics({ defaultMetrics: false }), pipeline, policy });
    const port = await server.listen();
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v1/admin/console`);
      expect(r.status).to.equal(200);
      expect((await json(r)).auth).to.equal('off');
    } finally {
      await server.close(100);
    }
  });

  it(`refuses stream ${MAX_STREAMS + 1} with 429, and ends every stream promptly at shutdown`, async () => {
    const server = createHttpServer({ config: testConfig(), gateway: new FakeGateway(), metrics: new Metrics({ defaultMetrics: false }) });
    const url = `http://127.0.0.1:${await server.listen()}/v1/admin/console/events`;
    const open = await Promise.all(Array.from({ length: MAX_STREAMS }, () => fetch(url)));
    expect(open.map((r) => r.status)).to.deep.equal(Array(MAX_STREAMS).fill(200));
    const extra = await fetch(url);
    expect(extra.status).to.equal(429);
    expect(extra.headers.get('retry-after')).to.equal('5');
    expect((await json(extra)).error.code).to.equal('too_many_concurrent_requests');
    const t0 = Date.now();
    await server.close(5000);
    expect(Date.now() - t0, 'close waited for the console streams').to.be.below(1000);
    const bodies = await Promise.all(open.map((r) => r.text()));
    for (const b of bodies) expect(b).to.match(/event: end\ndata: {"reason":"shutting_down"}\n\n$/);
  });
});
