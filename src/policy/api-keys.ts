/**
 * API keys: parsing (config entries, `INFERFLUX_API_KEYS`, `INFERCTL_API_KEY`), hashing and the
 * in-memory registry the request path looks keys up in.
 *
 * Keys are hashed (SHA-256) the moment they are read and only hashes are kept; a presented key is
 * hashed, looked up by hash, and the stored and presented digests are compared once more with
 * `timingSafeEqual`, so neither the key nor its hash leaks through comparison timing.
 */
import { MAX_KEY_LENGTH, hashKey, hashesEqual, keyIdFromHash } from '../config/api-key-spec.js';
import type { ApiKeyRecord } from './types.js';

export {
  DEFAULT_ENV_SCOPES,
  KeySpecError,
  MAX_KEY_LENGTH,
  MIN_KEY_LENGTH,
  TENANT_PATTERN,
  hashKey,
  hashesEqual,
  isScope,
  parseApiKeysEnv,
  toRecord,
  type KeySpec,
} from '../config/api-key-spec.js';

/**
 * The keys the request path accepts: rebuilt (once per policy change, not per request) from the
 * configured keys and the live policy document. Lookup is by hash.
 */
export class KeyRegistry {
  private readonly byHash = new Map<string, ApiKeyRecord>();

  constructor(...sources: readonly (readonly ApiKeyRecord[])[]) {
    // The first source wins on a duplicate hash: configured keys keep their configured scopes.
    for (const list of sources) for (const rec of list) if (!this.byHash.has(rec.hash)) this.byHash.set(rec.hash, rec);
  }

  get size(): number {
    return this.byHash.size;
  }

  /** The record of a presented key, or undefined. The key itself is hashed and dropped. */
  lookup(presented: string): ApiKeyRecord | undefined {
    if (presented.length === 0 || presented.length > MAX_KEY_LENGTH) return undefined;
    const hash = hashKey(presented);
    const rec = this.byHash.get(hash);
    // The Map found equal hashes; the constant-time compare keeps that true without relying on
    // how the Map compares strings.
    return rec && hashesEqual(rec.hash, hash) ? rec : undefined;
  }
}
