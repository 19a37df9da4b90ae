/**
 * Rate limits: token buckets per key and per tenant, for requests per minute and for tokens
 * (prompt + completion) per minute. A pure core: no timers, no `Date.now()`; callers pass the
 * time in milliseconds, so tests drive it step by step.
 *
 * - A bucket holds up to one minute's allowance and refills continuously (limit / 60 000 per ms).
 * - Requests take 1 from the key's and the tenant's request buckets; both are checked before
 *   either is charged, so a request refused by one limit costs nothing in the other.
 * - Tokens are charged after the fact (prompt tokens when known, completion tokens at the end), so
 *   a token bucket can go into debt; a new request is refused while a token bucket is below 1.
 * - Limits come from a getter read on every call, so an admin change applies to the next request;
 *   a lowered limit clamps existing balances, a raised one lets them refill to the new size.
 * - `decide` is the one admission rule; replicas sharing buckets in Redis (rate-limit-redis.ts)
 *   apply it to balances their Lua script read, so both backends refuse and charge alike.
 */
import type { RateLimitPolicy } from './types.js';

const MINUTE_MS = 60_000;

export type LimitKind = 'requests' | 'tokens';
export type LimitScope = 'key' | 'tenant';

/** @internal */
export class Bucket {
  constructor(
    public limit: number,
    public balance: number,
    public at: number,
  ) {}

  /** Brings the balance up to `now` under `limit` per minute. */
  refill(limit: number, now: number): void {
    if (limit !== this.limit) {
      this.limit = limit;
      this.balance = Math.min(this.balance, limit);
    }
    if (now > this.at) {
      this.balance = Math.min(limit, this.balance + ((now - this.at) * limit) / MINUTE_MS);
      this.at = now;
    }
  }

  /** Milliseconds until the balance reaches 1 (0 when it already has). */
  msUntilOne(): number {
    return this.balance >= 1 ? 0 : ((1 - this.balance) * MINUTE_MS) / this.limit;
  }

  full(): boolean {
    return this.balance >= this.limit;
  }
}

export interface LimitState {
  limit: number;
  /** Whole units left after this request. */
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
}

export type RateDecision =
  | {
      allowed: true;
      /** The key's request and token limits when set (for `x-ratelimit-*` headers), else the tenant's. */
      requests: LimitState | undefined;
      tokens: LimitState | undefined;
    }
  | {
      allowed: false;
      scope: LimitScope;
      kind: LimitKind;
      limit: number;
      /** Whole seconds until the refusing bucket holds one unit again (at least 1). */
      retryAfterSeconds: number;
      requests: LimitState | undefined;
      tokens: LimitState | undefined;
    };

/** Past this many buckets, full ones (equivalent to no bucket) are swept. */
const SWEEP_AT = 10_000;

export class RateLimiterCore {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly policy: () => RateLimitPolicy) {}

  /** @internal For tests and metrics. */
  get bucketCount(): number {
    return this.buckets.size;
  }

  private bucket(name: string, limit: number, now: number): Bucket | undefined {
    if (!(limit > 0)) {
      this.buckets.delete(name);
      return undefined;
    }
    let b = this.buckets.get(name);
    if (!b) {
      b = new Bucket(limit, limit, now);
      this.buckets.set(name, b);
    } else {
      b.refill(limit, now);
    }
    return b;
  }

  /** Admit one request of `keyId` in `tenant` at `now`, or say which limit refused it. */
  admit(keyId: string, tenant: string, now: number): RateDecision {
    const p = this.policy();
    if (this.buckets.size > SWEEP_AT) this.sweep(now);
    return decide([
      this.bucket(`rk:${keyId}`, p.requestsPerMinute, now),
      this.bucket(`rt:${tenant}`, p.tenantRequestsPerMinute, now),
      this.bucket(`tk:${keyId}`, p.tokensPerMinute, now),
      this.bucket(`tt:${tenant}`, p.tenantTokensPerMinute, now),
    ]);
  }

  /** Charge `tokens` used by `keyId` in `tenant` (may put the token buckets into debt). */
  charge(keyId: string, tenant: string, tokens: number, now: number): void {
    if (!(tokens > 0)) return;
    const p = this.policy();
    const tk = this.bucket(`tk:${keyId}`, p.tokensPerMinute, now);
    const tt = this.bucket(`tt:${tenant}`, p.tenantTokensPerMinute, now);
    // Debt is bounded to one minute's allowance, so one huge request cannot lock a key out for hours.
    if (tk) tk.balance = Math.max(-tk.limit, tk.balance - tokens);
    if (tt) tt.balance = Math.max(-tt.limit, tt.balance - tokens);
  }

  private sweep(now: number): void {
    const p = this.policy();
    for (const [name, b] of this.buckets) {
      const limit = limitFor(p, name);
      if (!(limit > 0)) {
        this.buckets.delete(name);
        continue;
      }
      b.refill(limit, now);
      if (b.full()) this.buckets.delete(name);
    }
  }
}

/** The four buckets of one request, refilled to now, in this order (absent = no such limit). */
export type RequestBuckets = [keyRequests: Bucket | undefined, tenantRequests: Bucket | undefined, keyTokens: Bucket | undefined, tenantTokens: Bucket | undefined];

const SCOPES: readonly [LimitScope, LimitKind][] = [
  ['key', 'requests'],
  ['tenant', 'requests'],
  ['key', 'tokens'],
  ['tenant', 'tokens'],
];

/**
 * The one admission rule, for local buckets and (mirrored by its Lua script) for Redis ones: refused
 * while any bucket is below 1, naming the one that refills last; else both request buckets are
 * charged 1. Mutates the buckets it is given.
 */
export function decide(buckets: RequestBuckets): RateDecision {
  const [rk, rt, tk, tt] = buckets;
  const reqShown = rk ?? rt;
  const tokShown = tk ?? tt;
  let worst: number | undefined;
  buckets.forEach((b, i) => {
    if (b && b.balance < 1 && (worst === undefined || b.msUntilOne() > buckets[worst]!.msUntilOne())) worst = i;
  });
  if (worst !== undefined) {
    const b = buckets[worst]!;
    const [scope, kind] = SCOPES[worst]!;
    return {
      allowed: false,
      scope,
      kind,
      limit: b.limit,
      retryAfterSeconds: Math.max(1, Math.ceil(b.msUntilOne() / 1000)),
      requests: reqShown && state(reqShown),
      tokens: tokShown && state(tokShown),
    };
  }
  if (rk) rk.balance -= 1;
  if (rt) rt.balance -= 1;
  return { allowed: true, requests: reqShown && state(reqShown), tokens: tokShown && state(tokShown) };
}

/**
 * What the request path needs of a rate limiter: a decision now (synchronous for this process's
 * buckets, a promise for shared ones) and a way to charge tokens afterwards (fire and forget).
 */
export interface RateLimiter {
  admit(keyId: string, tenant: string): RateDecision | Promise<RateDecision>;
  charge(keyId: string, tenant: string, tokens: number): void;
  close(): Promise<void>;
}

/** This process's buckets on the wall clock. */
export function localRateLimiter(core: RateLimiterCore, now: () => number = Date.now): RateLimiter {
  return {
    admit: (keyId, tenant) => core.admit(keyId, tenant, now()),
    charge: (keyId, tenant, tokens) => core.charge(keyId, tenant, tokens, now()),
    close: async () => undefined,
  };
}

function limitFor(p: RateLimitPolicy, bucketName: string): number {
  switch (bucketName.slice(0, 3)) {
    case 'rk:':
      return p.requestsPerMinute;
    case 'rt:':
      return p.tenantRequestsPerMinute;
    case 'tk:':
      return p.tokensPerMinute;
    default:
      return p.tenantTokensPerMinute;
  }
}

function state(b: Bucket): LimitState {
  return {
    limit: b.limit,
    remaining: Math.max(0, Math.floor(b.balance)),
    resetMs: b.balance >= b.limit ? 0 : Math.ceil(((b.limit - b.balance) * MINUTE_MS) / b.limit),
  };
}

/** OpenAI's reset format: `1s`, `6m0s`, `120ms`. */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}

/** `x-ratelimit-*` response headers as OpenAI sends them. */
export function rateLimitHeaders(d: RateDecision): Record<string, string> {
  const h: Record<string, string> = {};
  if (d.requests) {
    h['x-ratelimit-limit-requests'] = String(d.requests.limit);
    h['x-ratelimit-remaining-requests'] = String(d.requests.remaining);
    h['x-ratelimit-reset-requests'] = formatReset(d.requests.resetMs);
  }
  if (d.tokens) {
    h['x-ratelimit-limit-tokens'] = String(d.tokens.limit);
    h['x-ratelimit-remaining-tokens'] = String(d.tokens.remaining);
    h['x-ratelimit-reset-tokens'] = formatReset(d.tokens.resetMs);
  }
  return h;
}
