/**
 * The policy store's on-disk format: one JSON envelope per file, either plaintext or AES-256-GCM.
 *
 * ```
 * {"format":"inferflux-policy-store","version":1,"cipher":"aes-256-gcm",
 *  "kdf":{"name":"scrypt","N":32768,"r":8,"p":1,"salt":"<b64, 16 bytes>"},
 *  "nonce":"<b64, 12 bytes>","keycheck":"<b64, 16 bytes>","headercheck":"<b64, 16 bytes>",
 *  "tag":"<b64, 16 bytes>","ciphertext":"<b64>"}
 * {"format":"inferflux-policy-store","version":1,"cipher":"none","document":{...}}
 * ```
 *
 * The key is scrypt(passphrase, salt); the salt is random per file (kept across rewrites of the
 * same file, so the ~50 ms derivation runs once per process, not per write), the nonce is random per
 * write. The header (format, version, cipher, kdf params, salt, nonce) is the GCM additional data, so
 * editing any of it fails authentication just like editing the ciphertext. KDF parameters read
 * from a file are bounded before use: a forged header must not make us allocate gigabytes.
 *
 * AES-GCM alone cannot tell a wrong passphrase from a damaged file: both fail the tag. Two short
 * checks tell them apart. `headercheck`, a SHA-256 over the header and `keycheck`, catches a damaged
 * header (a wrong salt derives a wrong key, which would otherwise look like a wrong passphrase).
 * `keycheck`, an HMAC of a fixed text under the derived key, then says whether the passphrase is
 * right; if it is and the tag still fails, the ciphertext or tag is damaged. They are for honest
 * diagnosis, not security: GCM authenticates everything that matters. Files written before these
 * fields existed are read as before, with the ambiguous message.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { PolicyDocument } from '../types.js';

export const STORE_FORMAT = 'inferflux-policy-store' as const;
export const STORE_VERSION = 1;

export interface KdfParams {
  name: 'scrypt';
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
  /** Base64 salt, 16 random bytes per file. */
  salt: string;
}

/** 2^15 x 8 x 128 B = 32 MiB and ~50-100 ms per derivation: OWASP's scrypt floor, once per process. */
export const DEFAULT_KDF = { N: 1 << 15, r: 8, p: 1 } as const;

interface EncryptedEnvelope {
  format: typeof STORE_FORMAT;
  version: number;
  cipher: 'aes-256-gcm';
  kdf: KdfParams;
  nonce: string;
  /** Absent in files from before it existed. */
  keycheck?: string;
  headercheck?: string;
  tag: string;
  ciphertext: string;
}

interface PlainEnvelope {
  format: typeof STORE_FORMAT;
  version: number;
  cipher: 'none';
  document: unknown;
}

/** Why a store file could not be read; `message` always names the file. */
export class PolicyStoreError extends Error {
  constructor(
    readonly file: string,
    readonly reason:
      | 'malformed'
      | 'unsupported'
      | 'passphrase_required'
      | 'plaintext_refused'
      /** Wrong passphrase or a damaged file; only files without key/header checks end here. */
      | 'authentication_failed'
      | 'wrong_passphrase'
      /** The file is intact JSON but its header, tag or ciphertext is damaged or was altered. */
      | 'corrupted'
      | 'invalid_document',
    detail: string,
  ) {
    super(`policy store ${file}: ${detail}`);
    this.name = 'PolicyStoreError';
  }
}

function scrypt(pass: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(pass, salt, 32, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

function checkKdf(file: string, kdf: unknown): KdfParams {
  const k = kdf as Partial<KdfParams> | null;
  const ok =
    k !== null &&
    typeof k === 'object' &&
    k.name === 'scrypt' &&
    Number.isInteger(k.N) &&
    k.N! >= 1 << 14 &&
    k.N! <= 1 << 20 &&
    (k.N! & (k.N! - 1)) === 0 &&
    Number.isInteger(k.r) &&
    k.r! >= 1 &&
    k.r! <= 32 &&
    Number.isInteger(k.p) &&
    k.p! >= 1 &&
    k.p! <= 16 &&
    typeof k.salt === 'string' &&
    Buffer.from(k.salt, 'base64').length >= 16;
  if (!ok) throw new PolicyStoreError(file, 'unsupported', 'unsupported or out-of-range key derivation parameters');
  return k as KdfParams;
}

function aad(e: Pick<EncryptedEnvelope, 'format' | 'version' | 'cipher' | 'kdf' | 'nonce'>): Buffer {
  return Buffer.from(JSON.stringify([e.format, e.version, e.cipher, e.kdf.name, e.kdf.N, e.kdf.r, e.kdf.p, e.kdf.salt, e.nonce]), 'utf8');
}

function keyCheck(key: Buffer): Buffer {
  return createHmac('sha256', key).update('inferflux-policy-store key check').digest().subarray(0, 16);
}

function headerCheck(e: Pick<EncryptedEnvelope, 'format' | 'version' | 'cipher' | 'kdf' | 'nonce'>, keycheck: string): Buffer {
  return createHash('sha256').update(aad(e)).update(keycheck).digest().subarray(0, 16);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function same(a: Buffer | null, b: Buffer): boolean {
  return a !== null && a.length === b.length && timingSafeEqual(a, b);
}

/** Strict base64 (Buffer.from skips bad characters silently), or null. */
function b64(v: unknown): Buffer | null {
  return typeof v === 'string' && BASE64.test(v) ? Buffer.from(v, 'base64') : null;
}

/**
 * Derives and caches AES keys for one passphrase. Each distinct (salt, params) derives once; a
 * replica that reads a file another replica created pays one derivation, then reuses it.
 */
export class Sealer {
  private readonly keys = new Map<string, Promise<Buffer>>();
  /** Salt and params used for new writes: taken over from the last file read, else fresh. */
  private current: KdfParams | null = null;

  constructor(private readonly passphrase: string) {}

  private key(kdf: KdfParams): Promise<Buffer> {
    const id = `${kdf.N}:${kdf.r}:${kdf.p}:${kdf.salt}`;
    let k = this.keys.get(id);
    if (!k) {
      k = scrypt(this.passphrase, Buffer.from(kdf.salt, 'base64'), { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + (1 << 20) });
      this.keys.set(id, k);
      k.catch(() => this.keys.delete(id));
    }
    return k;
  }

  async seal(doc: PolicyDocument): Promise<string> {
    this.current ??= { name: 'scrypt', ...DEFAULT_KDF, salt: randomBytes(16).toString('base64') };
    const kdf = this.current;
    const nonce = randomBytes(12);
    const head = { format: STORE_FORMAT, version: STORE_VERSION, cipher: 'aes-256-gcm' as const, kdf, nonce: nonce.toString('base64') };
    const key = await this.key(kdf);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(aad(head));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(doc), 'utf8'), cipher.final()]);
    const keycheck = keyCheck(key).toString('base64');
    const env: EncryptedEnvelope = {
      ...head,
      keycheck,
      headercheck: headerCheck(head, keycheck).toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      ciphertext: ciphertext.toString('base64'),
    };
    return JSON.stringify(env) + '\n';
  }

  async open(file: string, env: EncryptedEnvelope): Promise<unknown> {
    const refuse = 'refusing to start from or overwrite it';
    const checked = env.keycheck !== undefined || env.headercheck !== undefined;
    if (checked) {
      const keycheck = typeof env.keycheck === 'string' ? env.keycheck : '';
      const kdfReadable = env.kdf !== null && typeof env.kdf === 'object';
      if (!kdfReadable || !same(b64(env.headercheck), headerCheck(env, keycheck))) {
        throw new PolicyStoreError(file, 'corrupted', `the file is damaged: its header (key derivation, nonce or key check) fails its checksum; ${refuse}`);
      }
    }
    const kdf = checkKdf(file, env.kdf);
    const nonce = b64(env.nonce);
    const tag = b64(env.tag);
    const ciphertext = b64(env.ciphertext);
    if (nonce?.length !== 12 || tag?.length !== 16 || !ciphertext || ciphertext.length === 0) {
      throw new PolicyStoreError(file, checked ? 'corrupted' : 'malformed', `the file is damaged: bad nonce, tag or ciphertext field; ${refuse}`);
    }
    const key = await this.key(kdf);
    if (checked && !same(b64(env.keycheck), keyCheck(key))) {
      throw new PolicyStoreError(file, 'wrong_passphrase', `wrong INFERFLUX_POLICY_PASSPHRASE (the file is intact, but the key it derives fails the file's key check); ${refuse}`);
    }
    let plain: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
      decipher.setAAD(aad(env));
      decipher.setAuthTag(tag);
      plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      if (checked) {
        throw new PolicyStoreError(file, 'corrupted', `the passphrase is right, but the encrypted content or its tag is damaged or was altered (AES-GCM authentication failed); ${refuse}`);
      }
      throw new PolicyStoreError(
        file,
        'authentication_failed',
        `cannot decrypt: wrong INFERFLUX_POLICY_PASSPHRASE or a damaged file (AES-GCM authentication failed; this file predates the checks that tell the two apart); ${refuse}`,
      );
    }
    this.current = kdf;
    try {
      return JSON.parse(plain.toString('utf8'));
    } catch {
      throw new PolicyStoreError(file, 'malformed', 'decrypted content is not JSON');
    }
  }
}

export function plainEnvelope(doc: PolicyDocument): string {
  const env: PlainEnvelope = { format: STORE_FORMAT, version: STORE_VERSION, cipher: 'none', document: doc };
  return JSON.stringify(env, null, 2) + '\n';
}

/**
 * What a store holds for `doc`: its envelope, sealed when there is a passphrase. Only keys created
 * through the admin API live in the store: config/env keys belong to each replica's own
 * configuration and are merged back in by `initialPolicy`.
 */
export async function storedText(doc: PolicyDocument, sealer: Sealer | null): Promise<string> {
  const stored: PolicyDocument = { ...doc, apiKeys: doc.apiKeys.filter((k) => k.origin === 'store') };
  return sealer ? sealer.seal(stored) : plainEnvelope(stored);
}

/** Parses a file's text into the (still unvalidated) document it holds. */
export async function openEnvelope(file: string, text: string, sealer: Sealer | null): Promise<unknown> {
  let env: EncryptedEnvelope | PlainEnvelope;
  try {
    env = JSON.parse(text) as EncryptedEnvelope | PlainEnvelope;
  } catch {
    throw new PolicyStoreError(file, 'malformed', text.trim() === '' ? 'the file is empty' : 'not a policy store file (not JSON: truncated, damaged or foreign)');
  }
  if (env === null || typeof env !== 'object' || env.format !== STORE_FORMAT) {
    throw new PolicyStoreError(file, 'malformed', `not a policy store file (format is not "${STORE_FORMAT}")`);
  }
  if (env.version !== STORE_VERSION) {
    throw new PolicyStoreError(file, 'unsupported', `format version ${String(env.version)} is not supported (this build reads ${STORE_VERSION})`);
  }
  if (env.cipher === 'aes-256-gcm') {
    if (!sealer) throw new PolicyStoreError(file, 'passphrase_required', 'the file is encrypted; set INFERFLUX_POLICY_PASSPHRASE');
    return sealer.open(file, env);
  }
  if (env.cipher === 'none') {
    // With a passphrase configured, a plaintext file is a downgrade: anyone who can write the file
    // could inject keys without knowing the passphrase. Refuse rather than trust it.
    if (sealer) {
      throw new PolicyStoreError(
        file,
        'plaintext_refused',
        'the file is plaintext but INFERFLUX_POLICY_PASSPHRASE is set; refusing a possible downgrade (remove the file or unset the passphrase)',
      );
    }
    return env.document;
  }
  throw new PolicyStoreError(file, 'unsupported', `unknown cipher ${JSON.stringify((env as { cipher: unknown }).cipher)}`);
}
