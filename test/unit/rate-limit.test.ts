/** The rate limiter's pure core, driven step by step with injected time. */
import { expect } from 'chai';
import { RateLimiterCore, formatReset, rateLimitHeaders } from '../../src/policy/rate-limit.js';
import type { RateLimitPolicy } from '../../src/policy/types.js';

function makeLimiter(p: Partial<RateLimitPolicy> = {}) {
  const policy: RateLimitPolicy = { requestsPerMinute: 0, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0, ...p };
  const core = new RateLimiterCore(() => policy);
  return { core, policy };
}

describe('rate limiter core', () => {
  it('0 means unlimited: no buckets, no headers', () => {
    const { core } = makeLimiter();
    for (let i = 0; i < 1000; i++) expect(core.admit('k', 't', 0).allowed).to.equal(true);
    expect(core.bucketCount).to.equal(0);
    expect(rateLimitHeaders(core.admit('k', 't', 0))).to.deep.equal({});
  });

  it('requests per minute: a full bucket, then 429 with the seconds until the next token', () => {
    const { core } = makeLimiter({ requestsPerMinute: 3 });
    const d1 = core.admit('k', 't', 0);
    expect(d1).to.deep.equal({ allowed: true, requests: { limit: 3, remaining: 2, resetMs: 20_000 }, tokens: undefined });
    expect(core.admit('k', 't', 0).allowed).to.equal(true);
    expect(core.admit('k', 't', 0).allowed).to.equal(true);
    const denied = core.admit('k', 't', 0);
    expect(denied).to.deep.equal({
      allowed: false,
      scope: 'key',
      kind: 'requests',
      limit: 3,
      retryAfterSeconds: 20,
      requests: { limit: 3, remaining: 0, resetMs: 60_000 },
      tokens: undefined,
    });
    // 19.5 s later: still not one whole token; Retry-After rounds up.
    const almost = core.admit('k', 't', 19_500);
    expect(almost.allowed).to.equal(false);
    expect(almost.allowed === false && almost.retryAfterSeconds).to.equal(1);
    expect(core.admit('k', 't', 20_000).allowed).to.equal(true);
    expect(core.admit('k', 't', 20_000).allowed).to.equal(false);
  });

  it('keys are limited separately; a tenant limit covers all its keys', () => {
    const { core } = makeLimiter({ requestsPerMinute: 2, tenantRequestsPerMinute: 3 });
    expect(core.admit('a', 't', 0).allowed).to.equal(true);
    expect(core.admit('a', 't', 0).allowed).to.equal(true);
    expect(core.admit('a', 't', 0).allowed).to.equal(false); // key a spent
    expect(core.admit('b', 't', 0).allowed).to.equal(true); // tenant has 1 left
    const d = core.admit('b', 't', 0);
    expect(d.allowed === false && [d.scope, d.kind]).to.deep.equal(['tenant', 'requests']);
    expect(core.admit('c', 'other', 0).allowed).to.equal(true);
  });

  it('a refused request costs nothing in the other bucket', () => {
    const { core } = makeLimiter({ requestsPerMinute: 10, tenantRequestsPerMinute: 1 });
    expect(core.admit('a', 't', 0).allowed).to.equal(true);
    for (let i = 0; i < 5; i++) expect(core.admit('a', 't', 0).allowed).to.equal(false);
    const d = core.admit('a', 't', 0);
    // The key's bucket (shown in the headers) still has the 9 the first request left.
    expect(d.allowed === false && [d.scope, d.requests]).to.deep.equal(['tenant', { limit: 10, remaining: 9, resetMs: 6_000 }]);
  });

  it('tokens per minute: charged after the fact, refused while in debt, debt bounded to one minute', () => {
    const { core } = makeLimiter({ tokensPerMinute: 600 });
    expect(core.admit('k', 't', 0).allowed).to.equal(true);
    core.charge('k', 't', 500, 0); // prompt
    core.charge('k', 't', 99, 0); // completion: 1 left
    expect(core.admit('k', 't', 0).allowed).to.equal(true);
    core.charge('k', 't', 5000, 0); // balance floors at -600
    const d = core.admit('k', 't', 0);
    expect(d.allowed === false && [d.kind, d.retryAfterSeconds]).to.deep.equal(['tokens', 61]); // -600 -> 1 at 10/s
    expect(core.admit('k', 't', 60_000).allowed).to.equal(false);
    expect(core.admit('k', 't', 60_100).allowed).to.equal(true);
  });

  it('a limit change applies to the next request: lowered clamps, raised refills to the new size', () => {
    const { core, policy } = makeLimiter({ requestsPerMinute: 100 });
    expect(core.admit('k', 't', 0).allowed).to.equal(true); // 99 left
    policy.requestsPerMinute = 1;
    expect(core.admit('k', 't', 0).allowed).to.equal(true); // clamped to 1, spent
    expect(core.admit('k', 't', 0).allowed).to.equal(false);
    policy.requestsPerMinute = 0;
    expect(core.admit('k', 't', 0).allowed).to.equal(true); // unlimited again
    policy.requestsPerMinute = 60;
    const d = core.admit('k', 't', 0); // a new, full bucket
    expect(d.allowed && d.requests!.remaining).to.equal(59);
  });

  it('headers follow OpenAI: x-ratelimit-{limit,remaining,reset}-{requests,tokens}', () => {
    const { core } = makeLimiter({ requestsPerMinute: 60, tenantTokensPerMinute: 1000 });
    expect(rateLimitHeaders(core.admit('k', 't', 0))).to.deep.equal({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '1000',
      'x-ratelimit-reset-tokens': '0ms',
    });
    expect([formatReset(120), formatReset(1500), formatReset(360_000)]).to.deep.equal(['120ms', '2s', '6m0s']);
  });

  it('sweeps full buckets once there are many (memory stays bounded)', () => {
    const { core } = makeLimiter({ requestsPerMinute: 10 });
    for (let i = 0; i <= 10_001; i++) core.admit(`k${i}`, 't', 0);
    expect(core.bucketCount).to.be.greaterThan(10_000);
    core.admit('late', 't', 60_000);
    expect(core.bucketCount).to.be.lessThan(5);
  });
});
