/**
 * Admin API and policy store against real server processes: changes through the admin API are
 * persisted (encrypted) and take effect on the next request; a second process sharing the store
 * picks them up; bad bodies are OpenAI-shaped 400s; nothing secret reaches the store or the
 * audit log; a tampered store stops start-up naming the file.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, startServer, type ApiResponse, type RunningServer } from '../helpers/server.js';

const ADMIN_KEY = 'ifx-test-admin-key-0123456789abcdef';
const PASSPHRASE = 'integration-passphrase-7d1f0c';

const call = (server: RunningServer, method: string, path: string, body?: unknown, key: string | null = ADMIN_KEY): Promise<ApiResponse> => api(server, method, path, body, key);

async function pollUntil<T>(what: string, deadlineMs: number, fn: () => Promise<T | undefined>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  for (;;) {
    const value = await fn();
    if (value !== undefined) return { value, ms: Date.now() - started };
    if (Date.now() - started > deadlineMs) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('admin API and policy store (two real server processes)', function () {
  this.timeout(180_000);
  let shared: string;
  let store: string;
  let a: RunningServer;
  let b: RunningServer;
  const env = () => ({ INFERFLUX_POLICY_STORE: store, INFERFLUX_POLICY_PASSPHRASE: PASSPHRASE, INFERCTL_API_KEY: ADMIN_KEY });

  before(async () => {
    shared = mkdtempSync(join(tmpdir(), 'ifx-shared-'));
    store = join(shared, 'policy_store.conf');
    [a, b] = await Promise.all([startServer(env()), startServer(env())]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    rmSync(shared, { recursive: true, force: true });
  });

  it('GET guardrails and rate_limit answer the live policy', async () => {
    const g = await call(a, 'GET', '/v1/admin/guardrails');
    expect(g.status).to.equal(200);
    expect(g.body).to.include.keys('blocklist', 'pii', 'opa_endpoint', 'opa_timeout_ms', 'opa_fail_mode', 'policy_version');
    expect(g.body.object).to.equal('guardrails');
    const r = await call(a, 'GET', '/v1/admin/rate_limit');
    expect(r.status).to.equal(200);
    expect(r.body).to.include.keys('requests_per_minute', 'tokens_per_minute', 'tenant_requests_per_minute', 'tenant_tokens_per_minute');
  });

  it('admin routes need credentials with scope admin', async () => {
    expect((await call(a, 'GET', '/v1/admin/guardrails', undefined, null)).status).to.equal(401);
    const created = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['generate', 'read'], tenant: 'team-x' });
    expect(created.status).to.equal(201);
    const reader = created.body.key as string;
    expect((await call(a, 'GET', '/v1/admin/guardrails', undefined, reader)).status).to.equal(403);
  });

  it('PUT guardrails / rate_limit take effect on the next request (< 250 ms) and persist encrypted', async () => {
    const before = (await call(a, 'GET', '/v1/admin/guardrails')).body;
    const put = await call(a, 'PUT', '/v1/admin/guardrails', { blocklist: ['forbidden-topic-zz'], opa_fail_mode: 'open' });
    const t0 = performance.now();
    expect(put.status).to.equal(200);
    expect(put.body.blocklist).to.deep.equal(['forbidden-topic-zz']);
    expect(put.body.opa_fail_mode).to.equal('open');
    expect(put.body.policy_version).to.be.greaterThan(before.policy_version as number);
    const after = await call(a, 'GET', '/v1/admin/guardrails');
    expect(after.body).to.deep.equal(put.body);
    // The next generation request is judged by the new blocklist.
    const denied = await call(a, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'tell me about forbidden-topic-zz' }], max_tokens: 4 });
    const visibleMs = performance.now() - t0;
    expect(denied.status).to.equal(400);
    expect(denied.body.error.code).to.equal('guardrail_denied');
    expect(visibleMs).to.be.lessThan(250);

    // PII on prompts only: the view says so, and a bad value is refused with its param.
    expect(before.pii).to.include({ output: true });
    const piiOnly = await call(a, 'PUT', '/v1/admin/guardrails', { pii: { output: false } });
    expect(piiOnly.status).to.equal(200);
    expect(piiOnly.body.pii).to.include({ output: false });
    expect((await call(a, 'PUT', '/v1/admin/guardrails', { pii: { output: 'no' } })).status).to.equal(400);
    expect((await call(a, 'PUT', '/v1/admin/guardrails', { pii: { output: true } })).body.pii).to.include({ output: true });

    const rl = await call(a, 'PUT', '/v1/admin/rate_limit', { requests_per_minute: 1000, tenant_tokens_per_minute: 50000 });
    expect(rl.status).to.equal(200);
    expect(rl.body).to.include({ requests_per_minute: 1000, tenant_tokens_per_minute: 50000 });

    const file = readFileSync(store, 'utf8');
    expect(JSON.parse(file)).to.include({ format: 'inferflux-policy-store', cipher: 'aes-256-gcm' });
    expect(file).not.to.contain('forbidden-topic-zz');
  });

  it('a key created on A works on A at once, and on B within 30 s', async () => {
    const created = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['read'], tenant: 'team-b', label: 'replication test', priority: 3 });
    const t0 = performance.now();
    expect(created.status).to.equal(201);
    expect(created.headers.get('cache-control')).to.equal('no-store');
    const key = created.body.key as string;
    expect(key).to.match(/^ifx-[A-Za-z0-9_-]{43}$/);
    expect(created.body).to.deep.include({ object: 'api_key', scopes: ['read'], tenant: 'team-b', label: 'replication test', priority: 3, origin: 'store' });
    expect(created.body.id).to.match(/^key:[0-9a-f]{12}$/);

    // Same process: the next request authenticates with it.
    const onA = await call(a, 'GET', '/v1/models', undefined, key);
    expect(onA.status).to.equal(200);
    expect(performance.now() - t0).to.be.lessThan(250);

    // Other process: adopted through the shared store (file watch or the periodic check).
    const { ms } = await pollUntil('key on B', 30_000, async () => ((await call(b, 'GET', '/v1/models', undefined, key)).status === 200 ? true : undefined));
    expect(ms).to.be.lessThan(30_000);
    const listB = await call(b, 'GET', '/v1/admin/api_keys');
    const ids = (listB.body.data as { id: string }[]).map((k) => k.id);
    expect(ids).to.include(created.body.id);

    // Listings show ids, never hashes or keys.
    const text = JSON.stringify(listB.body);
    expect(text).not.to.contain(key);
    expect(text).not.to.match(/[0-9a-f]{64}/);

    // Deleting it on B revokes it on A too.
    const del = await call(b, 'DELETE', `/v1/admin/api_keys/${encodeURIComponent(created.body.id as string)}`);
    expect(del.status).to.equal(200);
    expect(del.body).to.deep.equal({ id: created.body.id, object: 'api_key', deleted: true });
    await pollUntil('revocation on A', 30_000, async () => ((await call(a, 'GET', '/v1/models', undefined, key)).status === 401 ? true : undefined));
  });

  it('guardrail changes on B reach A', async () => {
    const put = await call(b, 'PUT', '/v1/admin/guardrails', { blocklist: ['term-from-b'] });
    expect(put.status).to.equal(200);
    await pollUntil('guardrails on A', 30_000, async () => {
      const g = await call(a, 'GET', '/v1/admin/guardrails');
      return (g.body.blocklist as string[]).includes('term-from-b') ? true : undefined;
    });
  });

  it('registers a key of the operator\'s choosing (or only its SHA-256), never echoing it; a duplicate is 409', async () => {
    const chosen = 'sk-migrated-client-key-0001';
    const byKey = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['generate', 'read'], tenant: 'legacy', key: chosen });
    expect(byKey.status).to.equal(201);
    expect(byKey.body).to.not.have.property('key');
    expect(JSON.stringify(byKey.body)).to.not.contain(chosen);
    expect(byKey.body.id).to.equal(`key:${createHash('sha256').update(chosen).digest('hex').slice(0, 12)}`);
    expect((await call(a, 'GET', '/v1/models', undefined, chosen)).status).to.equal(200);

    const hashed = 'sk-hashed-only-key-0002';
    const digest = createHash('sha256').update(hashed).digest('hex');
    const byHash = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['read'], key_sha256: digest.toUpperCase() });
    expect(byHash.status).to.equal(201);
    expect(byHash.body.id).to.equal(`key:${digest.slice(0, 12)}`);
    expect((await call(a, 'GET', '/v1/models', undefined, hashed)).status).to.equal(200);
    // Read only: generation is refused for it.
    expect((await call(a, 'POST', '/v1/completions', { prompt: 'x', max_tokens: 1 }, hashed)).status).to.equal(403);

    for (const dup of [{ key: chosen }, { key_sha256: digest }]) {
      const again = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['read'], ...dup });
      expect(again.status).to.equal(409);
      expect(again.body.error).to.include({ code: 'api_key_exists' });
    }
    const both = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['read'], key: 'sk-another-key-0003', key_sha256: digest });
    expect(both.status).to.equal(400);
    for (const [body, param] of [[{ key: 'short' }, 'key'], [{ key: 'has a space' }, 'key'], [{ key_sha256: 'abc' }, 'key_sha256']] as const) {
      const bad = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['read'], ...body });
      expect(bad.status, JSON.stringify(body)).to.equal(400);
      expect(bad.body.error).to.include({ code: 'invalid_request', param });
    }
  });

  it('bad bodies are 400 in OpenAI shape with param; unknown ids 404; configured keys 409', async () => {
    const cases: [string, string, unknown, string][] = [
      ['PUT', '/v1/admin/guardrails', { opa_fail_mode: 'maybe' }, 'opa_fail_mode'],
      ['PUT', '/v1/admin/guardrails', { pii: { kinds: ['ssn'] } }, 'pii.kinds[0]'],
      ['PUT', '/v1/admin/guardrails', { opa_endpoint: 'ftp://x' }, 'opa_endpoint'],
      ['PUT', '/v1/admin/rate_limit', { requests_per_minute: -1 }, 'requests_per_minute'],
      ['PUT', '/v1/admin/rate_limit', { tokens_per_minute: 'lots' }, 'tokens_per_minute'],
      ['POST', '/v1/admin/api_keys', { scopes: ['root'] }, 'scopes[0]'],
      ['POST', '/v1/admin/api_keys', { scopes: [] }, 'scopes'],
      ['POST', '/v1/admin/api_keys', {}, 'scopes'],
      ['POST', '/v1/admin/api_keys', { scopes: ['read'], tenant: 'bad tenant!' }, 'tenant'],
    ];
    for (const [method, path, body, param] of cases) {
      const r = await call(a, method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).to.equal(400);
      expect(r.body.error).to.include({ type: 'invalid_request_error', code: 'invalid_request', param });
    }
    const missing = await call(a, 'DELETE', '/v1/admin/api_keys/key:000000000000');
    expect(missing.status).to.equal(404);
    expect(missing.body.error).to.include({ code: 'api_key_not_found', param: 'id' });
    const list = await call(a, 'GET', '/v1/admin/api_keys');
    const configured = (list.body.data as { id: string; origin: string }[]).find((k) => k.origin !== 'store');
    expect(configured, 'INFERCTL_API_KEY is listed').to.not.equal(undefined);
    const ro = await call(a, 'DELETE', `/v1/admin/api_keys/${configured!.id}`);
    expect(ro.status).to.equal(409);
    expect(ro.body.error).to.include({ code: 'api_key_read_only' });
  });

  it('audits every change with who did it; no key or passphrase in the audit log or the store', async () => {
    const created = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['generate'] });
    const secret = created.body.key as string;
    await new Promise((r) => setTimeout(r, 300)); // the audit writer batches for 20 ms, then fsyncs
    const lines = readFileSync(join(a.dir, 'audit.log'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const admin = lines.filter((l) => l.event === 'admin');
    const decisions = admin.map((l) => l.decision);
    expect(decisions).to.include.members(['guardrails.update', 'rate_limit.update', 'api_keys.create']);
    const mine = admin.find((l) => l.decision === 'api_keys.create' && String(l.detail).includes(created.body.id as string));
    expect(mine, 'audit line for the created key').to.not.equal(undefined);
    expect(mine!.keyId).to.match(/^key:[0-9a-f]{12}$/); // the admin principal, not the new key
    expect(mine!.route).to.equal('POST /v1/admin/api_keys');

    for (const file of [store, join(a.dir, 'audit.log'), join(b.dir, 'audit.log')]) {
      const text = readFileSync(file, 'utf8');
      for (const s of [secret, ADMIN_KEY, PASSPHRASE]) expect(text, `${s.slice(0, 8)}... in ${file}`).not.to.contain(s);
    }
  });

  it('a rate limit change applies to the next request (< 250 ms)', async () => {
    const created = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['read'], tenant: 'rl-tenant' });
    const key = created.body.key as string;
    const put = await call(a, 'PUT', '/v1/admin/rate_limit', { requests_per_minute: 2 });
    const t0 = performance.now();
    expect(put.status).to.equal(200);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(a, 'GET', '/v1/models', undefined, key)).status);
    expect(performance.now() - t0).to.be.lessThan(250);
    expect(statuses).to.deep.equal([200, 200, 429]);
  });
});

describe('policy store at start-up', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-store-start-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a tampered store stops start-up with an error naming the file', async () => {
    const store = join(dir, 'policy_store.conf');
    const s = await startServer({ INFERFLUX_POLICY_STORE: store, INFERFLUX_POLICY_PASSPHRASE: PASSPHRASE, INFERCTL_API_KEY: ADMIN_KEY });
    expect((await call(s, 'POST', '/v1/admin/api_keys', { scopes: ['read'] })).status).to.equal(201);
    await s.stop();
    const env = JSON.parse(readFileSync(store, 'utf8')) as { ciphertext: string };
    const buf = Buffer.from(env.ciphertext, 'base64');
    buf[0] ^= 0x40;
    writeFileSync(store, JSON.stringify({ ...env, ciphertext: buf.toString('base64') }));
    let message = '';
    try {
      const s2 = await startServer({ INFERFLUX_POLICY_STORE: store, INFERFLUX_POLICY_PASSPHRASE: PASSPHRASE, INFERCTL_API_KEY: ADMIN_KEY });
      await s2.stop();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.contain('exited with 1 before listening');
    expect(message).to.contain(store);
    expect(message).to.contain('authentication failed');
  });

  it('without a passphrase the store is plaintext JSON and start-up warns', async () => {
    const store = join(dir, 'plain.conf');
    const s = await startServer({ INFERFLUX_POLICY_STORE: store, INFERCTL_API_KEY: ADMIN_KEY });
    try {
      expect(s.logs()).to.match(/"level":"warn".*policy store .*plain\.conf is plaintext/);
      const created = await call(s, 'POST', '/v1/admin/api_keys', { scopes: ['read'] });
      expect(created.status).to.equal(201);
      const text = readFileSync(store, 'utf8');
      expect(JSON.parse(text)).to.include({ cipher: 'none' });
      expect(text).not.to.contain(created.body.key as string);
    } finally {
      await s.stop();
    }
  });
});
