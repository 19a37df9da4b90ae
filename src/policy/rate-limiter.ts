/**
 * The rate limiter the config asks for: this process's buckets, or buckets in a Redis shared by
 * the replicas (`rate_limit.redis_url`). Both apply the same rule (`decide` in rate-limit.ts) to
 * the live limits of the policy document.
 */
import type { Log } from '../log/logger.js';
import type { RateLimitBackendConfig } from '../config/types.js';
import type { Metrics } from '../metrics.js';
import { RateLimiterCore, localRateLimiter, type RateLimiter } from './rate-limit.js';
import { redactUrlPasswords } from '../redact.js';
import { RedisRateLimiter } from './rate-limit-redis.js';
import type { RateLimitPolicy } from './types.js';

/** How long start-up waits to say whether Redis is reachable (it starts either way). */
const READY_WAIT_MS = 3000;

export async function createRateLimiter(
  backend: RateLimitBackendConfig,
  policy: () => RateLimitPolicy,
  metrics: Metrics,
  log: Log,
): Promise<RateLimiter> {
  const local = new RateLimiterCore(policy);
  if (backend.redisUrl === '') return localRateLimiter(local);
  const limiter = new RedisRateLimiter({
    url: backend.redisUrl,
    prefix: backend.redisPrefix,
    timeoutMs: backend.redisTimeoutMs,
    failMode: backend.redisFailMode,
    policy,
    fallback: local,
    observe: (op, seconds, ok) => metrics.rateLimitBackend.observe({ op, outcome: ok ? 'ok' : 'error' }, seconds),
    log,
  });
  try {
    await limiter.waitReady(READY_WAIT_MS);
  } catch {
    // Not fatal: Redis may come up after us; until then the fail mode decides.
    log.warn(`rate limits: Redis at ${redactUrlPasswords(backend.redisUrl)} not reachable yet; fail mode ${backend.redisFailMode} until it is`);
  }
  return limiter;
}
