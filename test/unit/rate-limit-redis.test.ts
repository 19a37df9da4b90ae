/**
 * Shared rate limits against a real redis-server: two limiter instances stand for two replicas.
 * Limits are shared (requests, tenants, tokens), a refusal charges nothing, buckets expire, and an
 * unreachable, stopped or stalled Redis is handled by the fail mode within the timeout.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { InferFluxError } from '../../src/errors.js';
import { RateLimiterCore, type RateDecision } from '../../src/policy/rate-limit.js';
import { RedisRateLimiter, type RedisFailMode } from '../../src/policy/rate-limit-redis.js';
import { redactUrlPasswords } from '../../src/redact.js';
import type { RateLimitPolicy } from '../../src/policy/types.js';
import { startRedis, type RunningRedis } from '../helpers/redis.js';

const NONE: RateLimitPolicy = { requestsPerMinute: 0, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0 };

describe('shared rate limits in Redis (real redis-server)', function () {
  this.timeout(30_000);
  let redis: RunningRedis;
  let admin: Redis;
  const open: RedisRateLimiter[] = [];
  let prefixN = 0;

  /** A replica's limiter with its own local fallback; `calls` records round-trip outcomes. */
  function replica(policy: () => RateLimitPolicy, opts: { url?: string; failMode?: RedisFailMode; prefix?: string; timeoutMs?: number } = {}) {
    const calls: { op: string; ok: boolean; seconds: number }[] = [];
    const limiter = new RedisRateLimiter({
      url: opts.url ?? redis.url,
      prefix: opts.prefix ?? `t${prefixN}:`,
      timeoutMs: opts.timeoutMs ?? 200,
      failMode: opts.failMode ?? 'local',
      policy,
      fallback: new RateLimiterCore(policy),
      observe: (op, seconds, ok) => calls.push({ op, ok, seconds }),
    });
    open.push(limiter);
    return { limiter, calls };
  }

  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
  });
  beforeEach(() => {
    prefixN++; // every test gets its own buckets
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
  });
  after(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  it('two replicas share one key request bucket; the refusal says when to retry', async () => {
    const policy = () => ({ ...NONE, requestsPerMinute: 5 });
    const a = replica(policy).limiter;
    const b = replica(policy).limiter;
    await Promise.all([a.waitReady(5000), b.waitReady(5000)]);
    const got: RateDecision[] = [];
    for (let i = 0; i < 6; i++) got.push(await (i % 2 === 0 ? a : b).admit('key:1', 'acme'));
    expect(got.slice(0, 5).map((d) => d.allowed)).to.deep.equal([true, true, true, true, true]);
    expect(got[0]!.requests).to.include({ limit: 5, remaining: 4 });
    expect(got[4]!.requests).to.include({ remaining: 0 });
    const refused = got[5]!;
    expect(refused.allowed).to.equal(false);
    if (refused.allowed) return;
    expect(refused).to.include({ scope: 'key', kind: 'requests', limit: 5 });
    // One request refills in 12 s at 5 per minute.
    expect(refused.retryAfterSeconds).to.be.within(11, 12);
    // Another key is not affected.
    expect((await b.admit('key:2', 'acme')).allowed).to.equal(true);
  });

  it('a tenant limit spans its keys on both replicas, and a refused request charges no other bucket', async () => {
    const policy = () => ({ ...NONE, requestsPerMinute: 10, tenantRequestsPerMinute: 3 });
    const a = replica(policy).limiter;
    const b = replica(policy).limiter;
    await Promise.all([a.waitReady(5000), b.waitReady(5000)]);
    expect((await a.admit('key:1', 'acme')).allowed).to.equal(true);
    expect((await b.admit('key:2', 'acme')).allowed).to.equal(true);
    expect((await a.admit('key:1', 'acme')).allowed).to.equal(true);
    const refused = await b.admit('key:1', 'acme');
    expect(refused).to.include({ allowed: false, scope: 'tenant', kind: 'requests', limit: 3 });
    // key:1 was charged twice, not three times: the tenant's refusal cost the key nothing.
    expect(refused.requests).to.include({ limit: 10, remaining: 8 });
    expect((await a.admit('key:3', 'other')).allowed).to.equal(true);
  });

  it('tokens charged on one replica refuse the key on the other (debt bounded to a minute)', async () => {
    const policy = () => ({ ...NONE, tokensPerMinute: 100 });
    const a = replica(policy);
    const b = replica(policy).limiter;
    await Promise.all([a.limiter.waitReady(5000), b.waitReady(5000)]);
    expect((await a.limiter.admit('key:1', 'acme')).allowed).to.equal(true);
    a.limiter.charge('key:1', 'acme', 1000);
    let d: RateDecision | undefined;
    for (let i = 0; i < 40 && (d === undefined || d.allowed); i++) {
      await new Promise((r) => setTimeout(r, 25));
      d = await b.admit('key:1', 'acme');
    }
    expect(d).to.include({ allowed: false, scope: 'key', kind: 'tokens', limit: 100 });
    if (d!.allowed) return;
    // 1000 tokens against 100/min is capped at -100: back to 1 in (1 + 100) / 100 min, ~61 s.
    expect(d!.retryAfterSeconds).to.be.within(59, 61);
    expect(a.calls.find((c) => c.op === 'charge')?.ok).to.equal(true);
  });

  it("one caller's charges close together cost one round trip, and all of them count", async () => {
    const policy = () => ({ ...NONE, tokensPerMinute: 1000, tenantTokensPerMinute: 5000 });
    const a = replica(policy);
    const b = replica(policy).limiter;
    await Promise.all([a.limiter.waitReady(5000), b.waitReady(5000)]);
    a.limiter.charge('key:1', 'acme', 300); // prompt tokens
    a.limiter.charge('key:1', 'acme', 400); // completion tokens of a short request
    a.limiter.charge('key:2', 'acme', 50); // another caller: its own round trip
    await new Promise((r) => setTimeout(r, 150));
    expect(a.calls.filter((c) => c.op === 'charge').map((c) => c.ok)).to.deep.equal([true, true]);
    // 1000 - 700, plus what refilled meanwhile (1000 per minute: ~17 per second).
    const d = await b.admit('key:1', 'acme');
    expect(d.tokens).to.include({ limit: 1000 });
    expect(d.tokens!.remaining).to.be.within(300, 310);
    // close() sends what is still pending.
    a.limiter.charge('key:1', 'acme', 250);
    await a.limiter.close();
    expect((await b.admit('key:1', 'acme')).tokens!.remaining).to.be.within(50, 62);
  });

  it('stores buckets under the prefix and lets them expire once full again', async () => {
    const policy = () => ({ ...NONE, requestsPerMinute: 5, tenantRequestsPerMinute: 60 });
    const a = replica(policy, { prefix: `exp${prefixN}:` }).limiter;
    await a.waitReady(5000);
    await a.admit('key:1', 'acme');
    const keys = (await admin.keys(`exp${prefixN}:*`)).sort();
    expect(keys).to.deep.equal([`exp${prefixN}:rk:key:1`, `exp${prefixN}:rt:acme`]);
    // One request at 5/min is full again in 12 s (+1 s margin); at 60/min in 1 s.
    expect(await admin.pttl(`exp${prefixN}:rk:key:1`)).to.be.within(12_000, 13_000);
    expect(await admin.pttl(`exp${prefixN}:rt:acme`)).to.be.within(1_000, 2_000);
  });

  it('follows a live limit change on the next request', async () => {
    let limit = 2;
    const a = replica(() => ({ ...NONE, requestsPerMinute: limit })).limiter;
    await a.waitReady(5000);
    expect((await a.admit('k', 't')).allowed).to.equal(true);
    expect((await a.admit('k', 't')).allowed).to.equal(true);
    expect((await a.admit('k', 't')).allowed).to.equal(false);
    limit = 0; // unlimited: decided without a round trip
    const unlimited = a.admit('k', 't');
    expect(unlimited).not.to.be.instanceOf(Promise);
    expect((await unlimited).allowed).to.equal(true);
    limit = 1; // the old bucket (balance ~0) is clamped to the new limit: still refused
    expect(await a.admit('k', 't')).to.include({ allowed: false, limit: 1 });
  });

  it('unreachable Redis: local decides, open admits, closed refuses with 503', async () => {
    const nowhere = 'redis://127.0.0.1:1'; // nothing listens on port 1
    const policy = () => ({ ...NONE, requestsPerMinute: 2 });
    const local = replica(policy, { url: nowhere, failMode: 'local' });
    const t0 = performance.now();
    const got = [await local.limiter.admit('k', 't'), await local.limiter.admit('k', 't'), await local.limiter.admit('k', 't')];
    expect(performance.now() - t0).to.be.below(1000);
    expect(got.map((d) => d.allowed)).to.deep.equal([true, true, false]);
    expect(local.calls.map((c) => c.ok)).to.deep.equal([false, false, false]);

    const openMode = replica(policy, { url: nowhere, failMode: 'open' }).limiter;
    for (let i = 0; i < 3; i++) expect(await openMode.admit('k', 't')).to.deep.equal({ allowed: true, requests: undefined, tokens: undefined });

    const closed = replica(policy, { url: nowhere, failMode: 'closed' }).limiter;
    const err = await Promise.resolve(closed.admit('k', 't')).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(InferFluxError);
    expect(err as InferFluxError).to.include({ code: 'rate_limiter_unavailable', status: 503, retryAfter: 1 });
  });

  it('a stalled Redis costs at most the timeout; a restarted one is used again', async () => {
    const policy = () => ({ ...NONE, requestsPerMinute: 1000 });
    const r = replica(policy, { timeoutMs: 100 });
    await r.limiter.waitReady(5000);
    expect((await r.limiter.admit('k', 't')).allowed).to.equal(true);
    // DEBUG SLEEP blocks the whole server for 1 s.
    const blocker = new Redis(redis.url);
    const sleeping = blocker.call('DEBUG', 'SLEEP', '1');
    await new Promise((res) => setTimeout(res, 50));
    const t0 = performance.now();
    const d = await r.limiter.admit('k', 't');
    const ms = performance.now() - t0;
    await sleeping;
    blocker.disconnect();
    expect(d.allowed).to.equal(true); // decided by the local buckets
    expect(ms).to.be.below(600);
    expect(r.calls.at(-1)).to.include({ op: 'admit', ok: false });

    // Restart Redis on the same port: the limiter reconnects by itself.
    const port = redis.port;
    await redis.stop();
    expect((await r.limiter.admit('k', 't')).allowed).to.equal(true);
    expect(r.calls.at(-1)).to.include({ ok: false });
    redis = await startRedis(port);
    admin.disconnect();
    admin = new Redis(redis.url);
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      await new Promise((res) => setTimeout(res, 50));
      await r.limiter.admit('k', 't');
      ok = r.calls.at(-1)!.ok;
    }
    expect(ok, 'the limiter used Redis again within 5 s of its restart').to.equal(true);
  });

  it('logs a Redis URL without its password', () => {
    expect(redactUrlPasswords('redis://user:s3cret@127.0.0.1:6379/0')).to.equal('redis://user:***@127.0.0.1:6379/0');
    expect(redactUrlPasswords('rediss://127.0.0.1:6380')).to.equal('rediss://127.0.0.1:6380');
  });
});
