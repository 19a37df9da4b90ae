/**
 * The request-path policy pipeline, kept as data: `[authenticate, authorize, concurrency, rateLimit]`. The
 * HTTP server runs it after the path is normalised and the route matched, before the route's
 * handler (the guardrail pre-check runs inside generation routes, once the body is parsed).
 *
 * Steps are `(ctx, next) => void | Promise<void>`: they deny by throwing an `InferFluxError` and
 * allow by calling `next()` exactly once (the composer throws on a second call). Everything but an
 * OIDC token verification is synchronous, so an API-key request runs its handler in the same tick
 * (uWS hands out request bodies only to handlers attached before the first await).
 *
 * Every authentication outcome and every denial is an audit event; keys, bearer tokens and JWTs
 * never appear in one (key ids are `key:<12 hex of the hash>`, failures say `unknown`).
 */
import type { AuditEvent } from '../audit/event.js';
import { InferFluxError } from '../errors.js';
import { KeyRegistry } from './api-keys.js';
import { OidcRejection, looksLikeJwt, reasonOf, toHttpError, type OidcVerifier } from './oidc.js';
import type { PolicyService } from './policy-service.js';
import { ANONYMOUS, PUBLIC, principalFromKey } from './principal.js';
import { RateLimiterCore, localRateLimiter, rateLimitHeaders, type RateDecision, type RateLimiter } from './rate-limit.js';
import { accessFor, allows, describe, isGeneration, isPublic, type Access } from './rbac.js';
import type { ApiKeyRecord, Principal } from './types.js';

/** What the policy steps see of one request; built by the server from copied headers. */
export interface PolicyContext {
  method: string;
  /** Normalised path segments (the router's view). */
  segments: readonly string[];
  /** Route label (pattern) for audit lines. */
  route: string;
  requestId: string;
  traceparent: string;
  /** Raw `authorization` / `x-api-key` header values: secrets, never logged. */
  authorization: string;
  apiKey: string;
  /** Set by authenticate. */
  principal: Principal;
  /** Set by the steps; sent with whatever response the request gets (error or not). */
  responseHeaders: Record<string, string>;
  /** Set by rateLimit: charge tokens this request used against its token buckets. */
  chargeTokens: ((tokens: number) => void) | undefined;
  /** Runs `fn` once the response is complete or the client left (at once if that already happened). */
  whenFinished(fn: () => void): void;
  /** @internal Access of the route, computed once by authenticate. */
  access?: Access;
}

export type Next = () => void | Promise<void>;
export type Step = (ctx: PolicyContext, next: Next) => void | Promise<void>;

/**
 * Runs `steps` then `final`, each step deciding whether to go on. Returns a promise only when a
 * step went asynchronous. A step calling `next()` twice is a bug: it throws.
 */
export function compose(steps: readonly Step[], final: (ctx: PolicyContext) => void | Promise<void>) {
  return (ctx: PolicyContext): void | Promise<void> => {
    let last = -1;
    const run = (i: number): void | Promise<void> => {
      if (i <= last) throw new Error('policy pipeline: next() called more than once');
      last = i;
      const step = steps[i];
      return step ? step(ctx, () => run(i + 1)) : final(ctx);
    };
    return run(0);
  };
}

export interface PolicyDeps {
  /** False only when the operator switched auth off (start-up says so loudly). */
  authEnabled: boolean;
  /** `/metrics` without credentials. */
  metricsPublic: boolean;
  /** Keys from config and env (hashed). */
  configKeys: readonly ApiKeyRecord[];
  /** The live policy: API keys from the store, rate limits. */
  policy: PolicyService;
  oidc: OidcVerifier | null;
  audit: (event: AuditEvent) => void;
  /**
   * Where the buckets live: this process's by default, or shared ones (Redis). Built by the
   * caller, so its lifetime (connections) is the caller's; the layer only calls it.
   */
  limiter?: RateLimiter;
  /** Milliseconds clock for the default (local) limiter. Defaults to `Date.now`. */
  now?: () => number;
  /** Generation requests one key (or OIDC subject) may have in flight; 0 or absent = unlimited. */
  maxConcurrentPerKey?: number;
}

const REALM = 'Bearer realm="inferflux"';

function event(ctx: PolicyContext, e: Partial<AuditEvent> & Pick<AuditEvent, 'event'>): AuditEvent {
  return { ts: new Date().toISOString(), requestId: ctx.requestId, route: ctx.route, traceparent: ctx.traceparent, ...e };
}

/** Bearer token or `x-api-key`, or a reason there is none usable. */
export function credentialsOf(authorization: string, apiKey: string): { token: string } | { missing: string } {
  if (authorization !== '') {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!m) return { missing: 'unsupported_auth_scheme' };
    return { token: m[1]! };
  }
  if (apiKey !== '') return { token: apiKey.trim() };
  return { missing: 'missing_credentials' };
}

// ---- steps -------------------------------------------------------------------------------------

export function authenticate(deps: PolicyDeps, state: PolicyState): Step {
  return (ctx, next) => {
    ctx.access = accessFor(ctx.segments);
    if (!deps.authEnabled) {
      ctx.principal = ANONYMOUS;
      return next();
    }
    if (isPublic(ctx.access, deps.metricsPublic)) {
      ctx.principal = PUBLIC;
      return next();
    }
    const refuse = (reason: string, keyId = 'unknown', err?: InferFluxError): never => {
      deps.audit(event(ctx, { event: 'auth', keyId, status: 401, decision: 'deny', detail: reason }));
      const e = err ?? new InferFluxError('unauthorized', reason === 'missing_credentials' ? 'Missing credentials: send Authorization: Bearer <key> or x-api-key.' : 'Invalid credentials.');
      if (e.status === 401) {
        ctx.responseHeaders['www-authenticate'] = reason === 'missing_credentials' ? REALM : `${REALM}, error="invalid_token"`;
      }
      deps.audit(event(ctx, { event: 'denial', keyId, status: e.status, decision: 'deny', detail: reason }));
      throw e;
    };
    const accept = (p: Principal): void | Promise<void> => {
      ctx.principal = p;
      deps.audit(event(ctx, { event: 'auth', keyId: p.id, tenant: p.tenant, status: 200, decision: 'allow', detail: p.source }));
      return next();
    };
    const cred = credentialsOf(ctx.authorization, ctx.apiKey);
    if ('missing' in cred) return refuse(cred.missing);
    const rec = state.keys.lookup(cred.token);
    if (rec) return accept(principalFromKey(rec));
    if (deps.oidc && looksLikeJwt(cred.token)) {
      return deps.oidc.verify(cred.token).then(accept, (err: unknown) => {
        const reason = err instanceof OidcRejection ? err.reason : reasonOf(err);
        return refuse(reason, 'unknown', toHttpError(reason));
      });
    }
    return refuse('unknown_key');
  };
}

export function authorize(deps: PolicyDeps): Step {
  return (ctx, next) => {
    const access = ctx.access ?? accessFor(ctx.segments);
    if (allows(access, ctx.principal.scopes, deps.metricsPublic)) return next();
    deps.audit(
      event(ctx, { event: 'denial', keyId: ctx.principal.id, tenant: ctx.principal.tenant, status: 403, decision: 'deny', detail: `needs scope ${describe(access)}` }),
    );
    throw new InferFluxError('forbidden', `This route needs scope ${describe(access)}.`);
  };
}

/**
 * `limits.max_concurrent_requests_per_key`: a key with that many generation requests in flight
 * (streamed or not) gets 429 for the next one. Runs before the rate limiter, so a request refused
 * here costs no rate-limit budget; its slot is freed when its response completes or the client
 * leaves (a leaving client also cancels its generation within one decode step).
 */
export function concurrency(deps: PolicyDeps, state: PolicyState): Step {
  const max = deps.maxConcurrentPerKey ?? 0;
  return (ctx, next) => {
    if (!(max > 0) || !isGeneration(ctx.access ?? accessFor(ctx.segments))) return next();
    const { id, tenant } = ctx.principal;
    const running = state.inFlight.get(id) ?? 0;
    if (running >= max) {
      deps.audit(event(ctx, { event: 'denial', keyId: id, tenant, status: 429, decision: 'deny', detail: `concurrency: ${running} in flight (max ${max})` }));
      throw new InferFluxError(
        'too_many_concurrent_requests',
        `This key already has ${running} generation request(s) in flight, the most limits.max_concurrent_requests_per_key allows; retry when one finishes.`,
        { retryAfter: 1 },
      );
    }
    state.inFlight.set(id, running + 1);
    // whenFinished runs its callback exactly once per request.
    ctx.whenFinished(() => {
      const left = (state.inFlight.get(id) ?? 1) - 1;
      if (left > 0) state.inFlight.set(id, left);
      else state.inFlight.delete(id);
    });
    return next();
  };
}

export function rateLimit(deps: PolicyDeps, state: PolicyState): Step {
  return (ctx, next) => {
    const access = ctx.access ?? accessFor(ctx.segments);
    // Probes and scrapes are never limited: an orchestrator must always see the truth.
    if (isPublic(access, deps.metricsPublic)) return next();
    const { id, tenant } = ctx.principal;
    const d = state.limiter.admit(id, tenant);
    // Local buckets answer in this tick; shared ones (Redis) after a round trip, and may fail.
    return d instanceof Promise ? d.then(decided, unavailable) : decided(d);

    function unavailable(err: unknown): never {
      const e = InferFluxError.from(err);
      deps.audit(event(ctx, { event: 'denial', keyId: id, tenant, status: e.status, decision: 'deny', detail: `rate limiter: ${e.code}` }));
      throw e;
    }
    function decided(d: RateDecision): void | Promise<void> {
      Object.assign(ctx.responseHeaders, rateLimitHeaders(d));
      if (!d.allowed) {
        deps.audit(
          event(ctx, {
            event: 'denial',
            keyId: id,
            tenant,
            status: 429,
            decision: 'deny',
            detail: `rate limit: ${d.scope} ${d.kind} per minute (${d.limit})`,
          }),
        );
        const who = d.scope === 'key' ? 'this key' : `tenant ${tenant}`;
        throw new InferFluxError('rate_limited', `Rate limit reached for ${who}: ${d.limit} ${d.kind} per minute. Retry after ${d.retryAfterSeconds} s.`, {
          retryAfter: d.retryAfterSeconds,
        });
      }
      ctx.chargeTokens = (tokens) => state.limiter.charge(id, tenant, tokens);
      return next();
    }
  };
}

/** The pipeline, as data; order matters and is the order in DESIGN.md §1 (the per-key concurrency cap sits with the rate limits). */
export const PIPELINE = [authenticate, authorize, concurrency, rateLimit] as const;

/** Mutable state shared by the steps: rebuilt from the live policy on every change. */
export interface PolicyState {
  keys: KeyRegistry;
  limiter: RateLimiter;
  /** Generation requests in flight per principal id (counted only when a concurrency limit is set). */
  inFlight: Map<string, number>;
}

export interface PolicyLayer {
  /** Runs the pipeline, then `final` when every step allowed. */
  run(ctx: PolicyContext, final: (ctx: PolicyContext) => void | Promise<void>): void | Promise<void>;
  /**
   * Authentication and authorisation only, then `final`: a WebSocket handshake, whose turns each
   * run the whole pipeline as requests of their own (so the handshake takes no rate-limit token).
   */
  admit(ctx: PolicyContext, final: (ctx: PolicyContext) => void | Promise<void>): void | Promise<void>;
  readonly authEnabled: boolean;
  /** Keys the request path currently accepts. */
  keyCount(): number;
  /** Stop following policy changes. */
  dispose(): void;
}

export function createPolicyLayer(deps: PolicyDeps): PolicyLayer {
  const state: PolicyState = {
    keys: new KeyRegistry(deps.configKeys, deps.policy.current.apiKeys),
    limiter: deps.limiter ?? localRateLimiter(new RateLimiterCore(() => deps.policy.current.rateLimit), deps.now),
    inFlight: new Map(),
  };
  // The key registry is rebuilt once per policy version, never per request.
  const unsubscribe = deps.policy.subscribe((doc) => {
    state.keys = new KeyRegistry(deps.configKeys, doc.apiKeys);
  });
  const steps = PIPELINE.map((make) => make(deps, state));
  const access = steps.slice(0, PIPELINE.indexOf(authorize) + 1);
  return {
    authEnabled: deps.authEnabled,
    // Two small closures per request; the steps themselves were built once.
    run: (ctx, final) => compose(steps, final)(ctx),
    admit: (ctx, final) => compose(access, final)(ctx),
    keyCount: () => state.keys.size,
    dispose: unsubscribe,
  };
}
