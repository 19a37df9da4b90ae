/**
 * Resolution of the policy-related config keys (`auth`, `rate_limit`, `server.tls`,
 * `server.cors`) after schema validation. API keys are hashed here, the moment they are read: the
 * typed config holds only `ApiKeyRecord`s (hashes), never a key.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KeySpecError, parseApiKeysEnv, toRecord, type KeySpec } from './api-key-spec.js';
import { checkFetchUrl } from './fetch-url.js';
import { SCOPES, type ApiKeyRecord, type RateLimitPolicy } from './policy-types.js';
import { ConfigError } from './errors.js';
import type { AuthConfig, CorsConfig, RateLimitBackendConfig, TlsConfig } from './types.js';

type Raw = Record<string, unknown>;
/** Where a dotted key's value came from (`built-in default`, a file, an env name). */
type From = (key: string) => string;

interface RawKey {
  key?: string;
  key_sha256?: string;
  scopes: string[];
  tenant?: string;
  priority?: number;
}

function record(spec: KeySpec, origin: ApiKeyRecord['origin'], where: string, source: string): ApiKeyRecord {
  try {
    return toRecord(spec, origin, where);
  } catch (err) {
    if (err instanceof KeySpecError) throw new ConfigError(where, `${err.message} (in ${source})`);
    throw err;
  }
}

/** Hashed keys from config, `INFERFLUX_API_KEYS` and `INFERCTL_API_KEY`, in that order. */
export function resolveApiKeys(rawKeys: RawKey[], env: NodeJS.ProcessEnv, from: From): ApiKeyRecord[] {
  const out: ApiKeyRecord[] = [];
  const seen = new Map<string, string>();
  const add = (rec: ApiKeyRecord, where: string, skipDuplicate = false): void => {
    const first = seen.get(rec.hash);
    if (first !== undefined) {
      if (skipDuplicate) return;
      throw new ConfigError(where, `the same key is already configured at ${first}`);
    }
    seen.set(rec.hash, where);
    out.push(rec);
  };
  rawKeys.forEach((k, i) => {
    const where = `auth.api_keys[${i}]`;
    add(record({ key: k.key, keySha256: k.key_sha256, scopes: k.scopes, tenant: k.tenant, priority: k.priority }, 'config', where, from('auth.api_keys')), where);
  });
  const list = env.INFERFLUX_API_KEYS;
  if (list) {
    let specs: KeySpec[];
    try {
      specs = parseApiKeysEnv(list);
    } catch (err) {
      if (err instanceof KeySpecError) throw new ConfigError('auth.api_keys', `${err.where}: ${err.message}`);
      throw err;
    }
    specs.forEach((spec, i) => {
      const where = `INFERFLUX_API_KEYS entry ${i + 1}`;
      add(record(spec, 'env', where, 'INFERFLUX_API_KEYS'), where);
    });
  }
  const dev = env.INFERCTL_API_KEY;
  if (dev) {
    // The CLI's key gets every scope; when the same key is configured elsewhere, that entry wins.
    add(record({ key: dev.trim(), scopes: [...SCOPES] }, 'env', 'INFERCTL_API_KEY', 'INFERCTL_API_KEY'), 'INFERCTL_API_KEY', true);
  }
  return out;
}

export function resolveAuth(a: Raw, env: NodeJS.ProcessEnv, from: From): AuthConfig {
  const o = a.oidc as Raw;
  let oidc: AuthConfig['oidc'] = null;
  const issuer = (o.issuer as string).trim();
  if (issuer !== '') {
    try {
      checkFetchUrl(issuer, 'issuer');
    } catch (err) {
      throw new ConfigError('auth.oidc.issuer', `${(err as Error).message.replace(/^issuer /, '')} (from ${from('auth.oidc.issuer')})`);
    }
    const audience = (o.audience as string).trim();
    if (audience === '') throw new ConfigError('auth.oidc.audience', `is required when auth.oidc.issuer is set (issuer from ${from('auth.oidc.issuer')})`);
    const jwksUri = (o.jwks_uri as string).trim();
    if (jwksUri !== '') {
      try {
        checkFetchUrl(jwksUri, 'jwks_uri');
      } catch (err) {
        throw new ConfigError('auth.oidc.jwks_uri', `${(err as Error).message.replace(/^jwks_uri /, '')} (from ${from('auth.oidc.jwks_uri')})`);
      }
    }
    oidc = {
      issuer,
      audience,
      jwksUri,
      scopesClaim: o.scopes_claim as string,
      tenantClaim: o.tenant_claim as string,
      clockSkewSeconds: o.clock_skew_seconds as number,
      algorithms: o.algorithms as string[],
      jwksCooldownSeconds: o.jwks_cooldown_seconds as number,
    };
  }
  return {
    enabled: a.enabled as 'auto' | boolean,
    enabledSource: from('auth.enabled'),
    apiKeys: resolveApiKeys(a.api_keys as RawKey[], env, from),
    metricsPublic: a.metrics_public as boolean,
    oidc,
  };
}

export function resolveRateLimit(r: Raw): RateLimitPolicy {
  return {
    requestsPerMinute: r.requests_per_minute as number,
    tokensPerMinute: r.tokens_per_minute as number,
    tenantRequestsPerMinute: r.tenant_requests_per_minute as number,
    tenantTokensPerMinute: r.tenant_tokens_per_minute as number,
  };
}

/** Where the buckets live (deployment, not policy: never in the store). */
export function resolveRateLimitBackend(r: Raw): RateLimitBackendConfig {
  return {
    redisUrl: r.redis_url as string,
    redisPrefix: r.redis_prefix as string,
    redisTimeoutMs: r.redis_timeout_ms as number,
    redisFailMode: r.redis_fail_mode as RateLimitBackendConfig['redisFailMode'],
  };
}

function readPem(key: string, file: string, from: From): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(key, `cannot read ${file} (${code}; from ${from(key)})`);
  }
}

/** `server.tls` (files checked readable, parseable and matching) and `server.cors`. */
export function resolveServerEdges(s: Raw, cwd: string, from: From): { tls: TlsConfig; cors: CorsConfig } {
  const t = s.tls as Raw;
  const tls: TlsConfig = { enabled: t.enabled as boolean, certPath: '', keyPath: '' };
  if (tls.enabled) {
    for (const k of ['cert_path', 'key_path'] as const) {
      if ((t[k] as string).trim() === '') {
        throw new ConfigError(`server.tls.${k}`, `is required when server.tls.enabled is true (enabled by ${from('server.tls.enabled')})`);
      }
    }
    tls.certPath = path.resolve(cwd, t.cert_path as string);
    tls.keyPath = path.resolve(cwd, t.key_path as string);
    // uWS only logs a bad certificate and then fails to listen; check here so the message names the key.
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(readPem('server.tls.cert_path', tls.certPath, from));
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError('server.tls.cert_path', `${tls.certPath} is not a PEM certificate (from ${from('server.tls.cert_path')})`);
    }
    let key: ReturnType<typeof createPrivateKey>;
    try {
      key = createPrivateKey(readPem('server.tls.key_path', tls.keyPath, from));
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(
        'server.tls.key_path',
        `${tls.keyPath} is not an unencrypted PEM private key (from ${from('server.tls.key_path')})`,
      );
    }
    if (!cert.checkPrivateKey(key)) {
      throw new ConfigError('server.tls.key_path', `${tls.keyPath} does not belong to the certificate ${tls.certPath}`);
    }
  }
  const c = s.cors as Raw;
  const allowedOrigins = (c.allowed_origins as string[]).map((origin, i) => {
    if (origin === '*') return origin;
    let u: URL;
    try {
      u = new URL(origin);
    } catch {
      throw new ConfigError(`server.cors.allowed_origins[${i}]`, `must be "*" or an origin like https://app.example.com (got ${JSON.stringify(origin)})`);
    }
    if (!['http:', 'https:'].includes(u.protocol) || u.origin !== origin.replace(/\/$/, '').toLowerCase()) {
      throw new ConfigError(`server.cors.allowed_origins[${i}]`, `must be "*" or scheme://host[:port] with no path (got ${JSON.stringify(origin)})`);
    }
    return u.origin;
  });
  return {
    tls,
    cors: {
      allowedOrigins,
      allowedHeaders: (c.allowed_headers as string[]).map((h) => h.toLowerCase()),
      maxAgeSeconds: c.max_age_seconds as number,
    },
  };
}
