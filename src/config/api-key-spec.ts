/**
 * API key specs as operators write them (config entries, `INFERFLUX_API_KEYS`, `INFERCTL_API_KEY`),
 * hashed into records the moment they are read. Part of config because the loader hashes keys
 * while it validates; src/policy/api-keys.ts holds the registry the request path looks keys up in.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SCOPES, type ApiKeyRecord, type Scope } from './policy-types.js';

/** Short, non-secret id of a key: 48 bits of its hash identify it, and reveal nothing. */
export function keyIdFromHash(hash: string): string {
  return `key:${hash.slice(0, 12)}`;
}

/** Tenants are labels in audit lines and bucket names: keep them short and plain. */
export const TENANT_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** Shorter keys are guessable; the README's `dev-key-123` is the shortest we want to accept. */
export const MIN_KEY_LENGTH = 8;
export const MAX_KEY_LENGTH = 512;
const HEX64 = /^[0-9a-f]{64}$/;

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Constant-time equality of two hex SHA-256 digests (false for anything that is not one). */
export function hashesEqual(a: string, b: string): boolean {
  if (!HEX64.test(a) || !HEX64.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

/** A key as the operator wrote it, before hashing. `key` and `keySha256` are exclusive. */
export interface KeySpec {
  key?: string | undefined;
  keySha256?: string | undefined;
  scopes: string[];
  tenant?: string | undefined;
  priority?: number | undefined;
}

export class KeySpecError extends Error {
  constructor(
    /** Where the spec came from, e.g. `auth.api_keys[2]` or `INFERFLUX_API_KEYS entry 1`. */
    readonly where: string,
    message: string,
  ) {
    super(message);
    this.name = 'KeySpecError';
  }
}

/** Hashes one spec into a record; the plaintext key is not kept anywhere in the result. */
export function toRecord(spec: KeySpec, origin: ApiKeyRecord['origin'], where: string, now = new Date()): ApiKeyRecord {
  if ((spec.key === undefined) === (spec.keySha256 === undefined)) {
    throw new KeySpecError(where, 'needs exactly one of key or key_sha256');
  }
  let hash: string;
  if (spec.key !== undefined) {
    if (spec.key.length < MIN_KEY_LENGTH || spec.key.length > MAX_KEY_LENGTH) {
      throw new KeySpecError(where, `key must be ${MIN_KEY_LENGTH}..${MAX_KEY_LENGTH} characters`);
    }
    if (/\s/.test(spec.key)) throw new KeySpecError(where, 'key must not contain whitespace');
    hash = hashKey(spec.key);
  } else {
    hash = spec.keySha256!.toLowerCase();
    if (!HEX64.test(hash)) throw new KeySpecError(where, 'key_sha256 must be 64 hex characters (sha256sum of the key)');
  }
  if (spec.scopes.length === 0) throw new KeySpecError(where, `needs at least one scope (${SCOPES.join(', ')})`);
  const scopes: Scope[] = [];
  for (const s of spec.scopes) {
    if (!isScope(s)) throw new KeySpecError(where, `unknown scope "${s}" (scopes: ${SCOPES.join(', ')})`);
    if (!scopes.includes(s)) scopes.push(s);
  }
  const tenant = spec.tenant ?? 'default';
  if (!TENANT_PATTERN.test(tenant)) throw new KeySpecError(where, 'tenant must be 1..128 characters of [A-Za-z0-9._:-]');
  const rec: ApiKeyRecord = { hash, id: keyIdFromHash(hash), scopes, tenant, createdAt: now.toISOString(), origin };
  if (spec.priority !== undefined && spec.priority !== 0) rec.priority = spec.priority;
  return rec;
}

/** Scopes an `INFERFLUX_API_KEYS` entry gets when it names none: use the API, not administer it. */
export const DEFAULT_ENV_SCOPES: Scope[] = ['generate', 'read'];

/**
 * `INFERFLUX_API_KEYS`: comma-separated entries `key[:scope|scope...][@tenant]`, e.g.
 * `sk-team-a-1:generate|read@team-a,sk-ops:admin`. Without scopes an entry gets generate + read;
 * without a tenant, `default`. Keys therefore cannot contain `,`, `:`, `@` or whitespace.
 */
export function parseApiKeysEnv(value: string, name = 'INFERFLUX_API_KEYS'): KeySpec[] {
  const out: KeySpec[] = [];
  const entries = value.split(',').map((s) => s.trim());
  entries.forEach((entry, i) => {
    if (entry === '') return;
    const where = `${name} entry ${i + 1}`;
    let rest = entry;
    let tenant: string | undefined;
    const at = rest.lastIndexOf('@');
    if (at >= 0) {
      tenant = rest.slice(at + 1);
      rest = rest.slice(0, at);
    }
    const colon = rest.indexOf(':');
    const key = colon >= 0 ? rest.slice(0, colon) : rest;
    const scopes = colon >= 0 ? rest.slice(colon + 1).split('|').map((s) => s.trim()).filter((s) => s !== '') : [...DEFAULT_ENV_SCOPES];
    if (key.includes('@')) throw new KeySpecError(where, 'a key cannot contain "@"');
    out.push({ key, scopes, tenant });
  });
  return out;
}

