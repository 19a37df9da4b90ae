/**
 * OIDC bearer tokens: JWTs verified with `jose` against the issuer's JWKS.
 *
 * - The JWKS location comes from `auth.oidc.jwks_uri`, or from the issuer's discovery document
 *   (`<issuer>/.well-known/openid-configuration`, whose `issuer` must equal ours exactly). Both are
 *   fetched lazily on the first token, without following redirects, over https (plain http only to
 *   loopback, for tests and sidecars).
 * - `createRemoteJWKSet` caches the keys and re-fetches on an unknown `kid`, at most once per
 *   cooldown, so a flood of made-up `kid`s cannot turn the server into a fetcher. Keys only ever
 *   come from that one URL: `jku`/`x5u`/embedded `jwk` headers are never followed.
 * - Algorithms are pinned (RS256, ES256 by default; `none` is never accepted), and `exp`, `iss`,
 *   `aud` and `sub` are required; `exp`/`nbf` are checked with a bounded clock skew.
 * - Scopes come from a configurable claim (space-separated string or array; `scp` is accepted
 *   when the claim is `scope`), the tenant from another; the principal id is `oidc:<sub>`.
 */
import type { OidcConfig } from '../config/types.js';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { InferFluxError } from '../errors.js';
import { checkFetchUrl } from '../config/fetch-url.js';

export { checkFetchUrl };
import { TENANT_PATTERN, isScope } from './api-keys.js';
import type { Principal, Scope } from './types.js';

/** The `auth.oidc` config section, plus the HTTP timeout of discovery and JWKS requests. */
export interface OidcOptions extends OidcConfig {
  /** Timeout of discovery and JWKS requests. Defaults to 5000. */
  timeoutMs?: number;
}

/** A refused token: `reason` is a short code for the audit line (never the token). */
export class OidcRejection extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'OidcRejection';
  }
}

/** Three base64url parts: worth a JWT verification (anything else is tried as an API key only). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(token);
}

/** Seconds a failed discovery is remembered, so a down IdP is not asked once per request. */
const DISCOVERY_RETRY_MS = 5_000;
const MAX_DISCOVERY_BYTES = 256 * 1024;

export class OidcVerifier {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private discovering: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  private failedAt = -Infinity;
  private readonly timeoutMs: number;

  constructor(
    private readonly opts: OidcOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    checkFetchUrl(opts.issuer, 'auth.oidc.issuer');
    if (opts.jwksUri) checkFetchUrl(opts.jwksUri, 'auth.oidc.jwks_uri');
  }

  private makeJwks(uri: string): ReturnType<typeof createRemoteJWKSet> {
    return createRemoteJWKSet(checkFetchUrl(uri, 'jwks_uri'), {
      cooldownDuration: this.opts.jwksCooldownSeconds * 1000,
      timeoutDuration: this.timeoutMs,
      cacheMaxAge: 10 * 60_000,
    });
  }

  private async discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const base = this.opts.issuer.replace(/\/+$/, '');
    const res = await fetch(`${base}/.well-known/openid-configuration`, {
      redirect: 'error',
      signal: AbortSignal.timeout(this.timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (res.status !== 200) throw new Error(`discovery answered ${res.status}`);
    const text = await res.text();
    if (text.length > MAX_DISCOVERY_BYTES) throw new Error('discovery document too large');
    const doc = JSON.parse(text) as { issuer?: unknown; jwks_uri?: unknown };
    // OIDC Discovery 1.0 §4.3: the document's issuer must be exactly the one we asked.
    if (doc.issuer !== this.opts.issuer) throw new Error('discovery document names another issuer');
    if (typeof doc.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
    return this.makeJwks(doc.jwks_uri);
  }

  private keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return Promise.resolve(this.jwks);
    if (this.opts.jwksUri) {
      this.jwks = this.makeJwks(this.opts.jwksUri);
      return Promise.resolve(this.jwks);
    }
    if (this.discovering) return this.discovering;
    if (this.now() - this.failedAt < DISCOVERY_RETRY_MS) return Promise.reject(new OidcRejection('jwks_unavailable'));
    this.discovering = this.discover().then(
      (set) => {
        this.jwks = set;
        this.discovering = undefined;
        return set;
      },
      () => {
        this.failedAt = this.now();
        this.discovering = undefined;
        throw new OidcRejection('jwks_unavailable');
      },
    );
    return this.discovering;
  }

  /** The principal of a valid token; rejects with `OidcRejection` (reason code) otherwise. */
  async verify(token: string): Promise<Principal> {
    const jwks = await this.keySet();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        algorithms: this.opts.algorithms,
        clockTolerance: this.opts.clockSkewSeconds,
        requiredClaims: ['exp', 'iss', 'aud', 'sub'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      throw new OidcRejection(reasonOf(err));
    }
    return this.principal(payload);
  }

  private principal(payload: JWTPayload): Principal {
    const sub = payload.sub;
    if (typeof sub !== 'string' || sub === '' || sub.length > 256) throw new OidcRejection('bad_sub_claim');
    let raw = payload[this.opts.scopesClaim];
    if (raw === undefined && this.opts.scopesClaim === 'scope') raw = payload.scp;
    const scopes = new Set<Scope>();
    const list = typeof raw === 'string' ? raw.split(' ') : Array.isArray(raw) ? raw : [];
    for (const s of list) if (typeof s === 'string' && isScope(s)) scopes.add(s);
    const tenantRaw = payload[this.opts.tenantClaim];
    let tenant = 'default';
    if (tenantRaw !== undefined) {
      if (typeof tenantRaw !== 'string' || !TENANT_PATTERN.test(tenantRaw)) throw new OidcRejection('bad_tenant_claim');
      tenant = tenantRaw;
    }
    return { id: `oidc:${sub}`, tenant, scopes, source: 'oidc', priority: 0 };
  }
}

/** Audit reason codes for jose's errors (codes, not messages). */
export function reasonOf(err: unknown): string {
  if (err instanceof OidcRejection) return err.reason;
  if (err instanceof joseErrors.JWTExpired) return 'token_expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
        return 'token_not_yet_valid';
      case 'iat':
        return 'token_issued_in_future';
      case 'iss':
        return 'wrong_issuer';
      case 'aud':
        return 'wrong_audience';
      default:
        return `bad_${err.claim}_claim`.replace(/[^a-z0-9_]/gi, '');
    }
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'unknown_kid';
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return 'ambiguous_kid';
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return 'jwks_unavailable';
  if (err instanceof joseErrors.JOSENotSupported) return 'unsupported_token';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'malformed_token';
  // Network failures fetching the JWKS surface as plain errors.
  if (err instanceof Error && !(err instanceof joseErrors.JOSEError)) return 'jwks_unavailable';
  return 'invalid_token';
}

/** `jwks_unavailable` is our side failing, not the caller's token: a 503 the client may retry. */
export function toHttpError(reason: string): InferFluxError {
  if (reason === 'jwks_unavailable') return new InferFluxError('auth_unavailable', undefined, { retryAfter: 5 });
  return new InferFluxError('unauthorized', 'The bearer token is not valid.');
}
