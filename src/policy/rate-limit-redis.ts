/**
 * Rate limits shared by every replica that names the same Redis (`rate_limit.redis_url`): the same
 * token buckets and the same admission rule as this process's (`decide` in rate-limit.ts), kept in
 * Redis hashes and updated by one Lua script per request, so check-and-charge is atomic across
 * replicas and time is Redis's own clock (replicas' clocks may disagree; Redis's is one).
 *
 * - A bucket is a hash `{b: balance, t: ms}` under `<prefix><rk|rt|tk|tt>:<key id or tenant>`; it
 *   expires once it would be full again (a full bucket and no bucket mean the same), so idle keys
 *   cost Redis nothing.
 * - Commands are bounded by `redis_timeout_ms` and never queued while disconnected: a request is
 *   not held up by an unreachable Redis. Then `redis_fail_mode` decides: `local` (default) lets
 *   this process's buckets decide (each replica limits on its own until Redis is back), `open`
 *   admits, `closed` refuses with 503.
 * - Tokens are charged after the fact, as locally, and a caller's charges within 20 ms are sent as
 *   one (a short request's prompt and completion tokens: one round trip, not two); a charge that
 *   cannot reach Redis goes to the local buckets instead.
 *
 * All bucket keys of one request must live on one Redis node: a single Redis (or a cluster with a
 * hash tag in the prefix, e.g. `{inferflux}:rl:`).
 */
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { InferFluxError } from '../errors.js';
import { redactUrlPasswords } from '../redact.js';
import { Bucket, decide, type RateDecision, type RateLimiter, type RateLimiterCore, type RequestBuckets } from './rate-limit.js';
import type { RateLimitPolicy } from './types.js';

export type RedisFailMode = 'local' | 'open' | 'closed';

export interface RedisLimiterOptions {
  url: string;
  /** Prefix of every bucket key. */
  prefix: string;
  /** Bound on one Redis round trip, milliseconds. */
  timeoutMs: number;
  failMode: RedisFailMode;
  /** The live limits. */
  policy: () => RateLimitPolicy;
  /** Decides (and is charged) when Redis cannot be reached and `failMode` is `local`. */
  fallback: RateLimiterCore;
  /** Round-trip time of each admit and charge, and failures; `ok` false = failed or timed out. */
  observe?: (op: 'admit' | 'charge', seconds: number, ok: boolean) => void;
  log?: (line: string) => void;
}

const MINUTE_MS = 60_000;

// Shared by both scripts: refill a bucket to `now` (Redis TIME in ms) and store it back with an
// expiry at the moment it would be full again. Mirrors Bucket.refill in rate-limit.ts.
const LUA_COMMON = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function load(key, limit)
  local h = redis.call('HMGET', key, 'b', 't')
  local b, at = tonumber(h[1]), tonumber(h[2])
  if b == nil or at == nil then return limit, now end
  if now > at then b = b + (now - at) * limit / ${MINUTE_MS}; at = now end
  if b > limit then b = limit end
  return b, at
end
local function store(key, limit, b, at)
  redis.call('HSET', key, 'b', string.format('%.17g', b), 't', at)
  redis.call('PEXPIRE', key, math.ceil((limit - b) * ${MINUTE_MS} / limit) + 1000)
end
`;

/**
 * KEYS: key-requests, tenant-requests, key-tokens, tenant-tokens buckets; ARGV: their limits (0 =
 * none). Returns `{allowed, now, balance1..4}`, balances after refill and before the charge ('' =
 * no such limit), as strings: Redis would truncate a Lua number reply to an integer.
 */
const ADMIT_LUA = `${LUA_COMMON}
local bal, at = {}, {}
local ok = 1
for i = 1, 4 do
  local limit = tonumber(ARGV[i])
  if limit > 0 then
    bal[i], at[i] = load(KEYS[i], limit)
    if bal[i] < 1 then ok = 0 end
  end
end
local out = {ok, tostring(now)}
for i = 1, 4 do
  local limit = tonumber(ARGV[i])
  if limit > 0 then
    local b = bal[i]
    if ok == 1 and i <= 2 then b = b - 1 end
    store(KEYS[i], limit, b, at[i])
    out[i + 2] = string.format('%.17g', bal[i])
  else
    out[i + 2] = ''
  end
end
return out
`;

/** KEYS: key-tokens, tenant-tokens buckets; ARGV: their limits, tokens. Debt is bounded to one minute's allowance. */
const CHARGE_LUA = `${LUA_COMMON}
local tokens = tonumber(ARGV[3])
for i = 1, 2 do
  local limit = tonumber(ARGV[i])
  if limit > 0 then
    local b, at = load(KEYS[i], limit)
    b = b - tokens
    if b < -limit then b = -limit end
    store(KEYS[i], limit, b, at)
  end
end
return 1
`;

interface ScriptedRedis extends Redis {
  ifxAdmit(k1: string, k2: string, k3: string, k4: string, l1: number, l2: number, l3: number, l4: number): Promise<[number, string, string, string, string, string]>;
  ifxCharge(k1: string, k2: string, l1: number, l2: number, tokens: number): Promise<number>;
}

/** Charges of one key and tenant this close together are sent as one (see `charge`). */
const CHARGE_COALESCE_MS = 20;

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: ScriptedRedis;
  private readonly log: (line: string) => void;
  private connected = false;
  private readonly pendingCharges = new Map<string, { keyId: string; tenant: string; tokens: number }>();
  private chargeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: RedisLimiterOptions) {
    this.log = opts.log ?? (() => undefined);
    const redis = new Redis(opts.url, {
      // A request must not wait for a reconnect: fail now, let the fail mode decide.
      enableOfflineQueue: false,
      commandTimeout: opts.timeoutMs,
      maxRetriesPerRequest: 0,
      connectTimeout: Math.max(1000, opts.timeoutMs),
      // Reconnect forever, backing off to 2 s: Redis coming back must be picked up without a restart.
      retryStrategy: (attempt) => Math.min(2000, 50 * 2 ** Math.min(attempt, 6)),
    });
    redis.defineCommand('ifxAdmit', { numberOfKeys: 4, lua: ADMIT_LUA });
    redis.defineCommand('ifxCharge', { numberOfKeys: 2, lua: CHARGE_LUA });
    const where = redactUrlPasswords(opts.url);
    redis.on('ready', () => {
      if (!this.connected) this.log(`rate limits: shared through Redis at ${where}`);
      this.connected = true;
    });
    // Said once per outage, not once per reconnect attempt.
    redis.on('error', (err: Error) => {
      if (this.connected) this.log(`rate limits: Redis at ${where} unreachable (${err.message}); fail mode ${opts.failMode} until it is back`);
      this.connected = false;
    });
    redis.on('end', () => {
      this.connected = false;
    });
    this.redis = redis as ScriptedRedis;
  }

  /** Resolves when connected; rejects on a connection error or after `ms` (start-up says which). */
  async waitReady(ms: number): Promise<void> {
    if (this.redis.status !== 'ready') await once(this.redis, 'ready', { signal: AbortSignal.timeout(ms) });
  }

  admit(keyId: string, tenant: string): RateDecision | Promise<RateDecision> {
    const p = this.opts.policy();
    const limits = [p.requestsPerMinute, p.tenantRequestsPerMinute, p.tokensPerMinute, p.tenantTokensPerMinute] as const;
    // No limit set: nothing to ask Redis, and the request stays on the synchronous path.
    if (!limits.some((l) => l > 0)) return decide([undefined, undefined, undefined, undefined]);
    const k = this.keys(keyId, tenant);
    const started = performance.now();
    return this.redis.ifxAdmit(k.rk, k.rt, k.tk, k.tt, ...limits).then(
      (reply) => {
        this.opts.observe?.('admit', (performance.now() - started) / 1000, true);
        const now = Number(reply[1]);
        const buckets = limits.map((limit, i) => {
          const balance = reply[i + 2];
          return limit > 0 && balance !== '' && balance !== undefined ? new Bucket(limit, Number(balance), now) : undefined;
        }) as RequestBuckets;
        // The script charged exactly when this says allowed: both apply the same rule to the same balances.
        return decide(buckets);
      },
      (err: unknown) => {
        this.opts.observe?.('admit', (performance.now() - started) / 1000, false);
        return this.unavailable(keyId, tenant, err);
      },
    );
  }

  charge(keyId: string, tenant: string, tokens: number): void {
    if (!(tokens > 0)) return;
    const p = this.opts.policy();
    if (!(p.tokensPerMinute > 0) && !(p.tenantTokensPerMinute > 0)) return;
    // Charges of one caller within CHARGE_COALESCE_MS go to Redis as one: a short request's prompt
    // and completion tokens, or many concurrent requests of one key, cost one round trip.
    const id = `${keyId}\u0000${tenant}`;
    const pending = this.pendingCharges.get(id);
    if (pending) pending.tokens += tokens;
    else this.pendingCharges.set(id, { keyId, tenant, tokens });
    // Unref'd: shutdown flushes what is pending through close().
    this.chargeTimer ??= setTimeout(() => void this.flushCharges(), CHARGE_COALESCE_MS).unref();
  }

  /** Sends every pending charge; one that cannot reach Redis goes to the local buckets. */
  private async flushCharges(): Promise<void> {
    if (this.chargeTimer) clearTimeout(this.chargeTimer);
    this.chargeTimer = undefined;
    const batch = [...this.pendingCharges.values()];
    this.pendingCharges.clear();
    const p = this.opts.policy();
    await Promise.all(
      batch.map(({ keyId, tenant, tokens }) => {
        const k = this.keys(keyId, tenant);
        const started = performance.now();
        return this.redis.ifxCharge(k.tk, k.tt, p.tokensPerMinute, p.tenantTokensPerMinute, tokens).then(
          () => this.opts.observe?.('charge', (performance.now() - started) / 1000, true),
          () => {
            this.opts.observe?.('charge', (performance.now() - started) / 1000, false);
            // Not lost: the local buckets decide while Redis is away, so they carry the debt.
            this.opts.fallback.charge(keyId, tenant, tokens, Date.now());
          },
        );
      }),
    );
  }

  async close(): Promise<void> {
    await this.flushCharges();
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  private keys(keyId: string, tenant: string) {
    const pre = this.opts.prefix;
    return { rk: `${pre}rk:${keyId}`, rt: `${pre}rt:${tenant}`, tk: `${pre}tk:${keyId}`, tt: `${pre}tt:${tenant}` };
  }

  private unavailable(keyId: string, tenant: string, err: unknown): RateDecision {
    switch (this.opts.failMode) {
      case 'local':
        return this.opts.fallback.admit(keyId, tenant, Date.now());
      case 'open':
        return { allowed: true, requests: undefined, tokens: undefined };
      case 'closed':
        throw new InferFluxError('rate_limiter_unavailable', `The shared rate limiter did not answer (${err instanceof Error ? err.message : String(err)}); the request was not admitted. Retry later.`, {
          retryAfter: 1,
        });
    }
  }
}
