/**
 * The policy store in Redis (`policy.redis_url`), for replicas that share no volume (Kubernetes
 * pods without a ReadWriteMany claim): the same envelope as the file store (AES-256-GCM with the
 * passphrase, or plaintext JSON without), kept in one Redis hash `{v: version, doc: envelope}`.
 *
 * - A write is one Lua script: it refuses a version not newer than the stored one
 *   (`policy_conflict`, as the file store's lock + version check does), sets both fields, and
 *   publishes the version on `<key>:changed`, so every replica loads it within a round trip.
 * - Readers subscribe to that channel and also check the stored version every
 *   `policy.watch_interval_seconds` (a message is lost while a replica is disconnected).
 * - Durability is Redis's: run it with AOF (`appendonly yes`) to keep admin changes across a
 *   Redis restart. Start-up fails when Redis cannot be read, as it does on an unreadable file:
 *   serving without the stored policy could bring back revoked keys or looser guardrails.
 */
import { Redis } from 'ioredis';
import { InferFluxError } from '../../errors.js';
import { redactUrlPasswords } from '../../redact.js';
import type { PolicyDocument } from '../types.js';
import { validateDocument } from './document-schema.js';
import { openEnvelope, PolicyStoreError, storedText, type Sealer } from './envelope.js';
import type { PolicyStore } from './store.js';
import { StoreWatches } from './store-watch.js';

export interface RedisPolicyStoreOptions {
  url: string;
  /** The hash holding the store; the change channel is `<key>:changed`. */
  key: string;
  sealer: Sealer | null;
  log: (msg: string) => void;
  watchIntervalMs: number;
  /** Bound on one Redis command. */
  timeoutMs?: number;
}

/** KEYS[1] the hash; ARGV version, envelope, channel. Returns 1 when written, 0 on a conflict. */
const SAVE_LUA = `
local stored = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if stored >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'doc', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
`;

interface ScriptedRedis extends Redis {
  ifxSavePolicy(key: string, version: string, envelope: string, channel: string): Promise<number>;
}

export class RedisPolicyStore implements PolicyStore {
  readonly path: string;
  readonly encrypted: boolean;
  private readonly redis: ScriptedRedis;
  private readonly channel: string;
  private readonly watches = new StoreWatches();
  private closed = false;

  constructor(private readonly opts: RedisPolicyStoreOptions) {
    // What errors and logs call the store: the Redis (without its password) and the key.
    this.path = `${redactUrlPasswords(opts.url)} key ${opts.key}`;
    this.encrypted = opts.sealer !== null;
    this.channel = `${opts.key}:changed`;
    const redis = new Redis(opts.url, {
      commandTimeout: opts.timeoutMs ?? 2000,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(2000, 50 * 2 ** Math.min(attempt, 6)),
    });
    redis.defineCommand('ifxSavePolicy', { numberOfKeys: 1, lua: SAVE_LUA });
    redis.on('error', () => {
      // Reported where it matters (load at start, save, watch); reconnects by itself.
    });
    this.redis = redis as ScriptedRedis;
  }

  async load(): Promise<PolicyDocument | null> {
    let text: string | null;
    try {
      text = await this.redis.hget(this.opts.key, 'doc');
    } catch (err) {
      throw new PolicyStoreError(this.path, 'malformed', `cannot read: ${(err as Error).message}`);
    }
    if (text === null) return null;
    return validateDocument(this.path, await openEnvelope(this.path, text, this.opts.sealer));
  }

  async save(doc: PolicyDocument): Promise<void> {
    if (this.closed) throw new InferFluxError('shutting_down', 'the policy store is closed');
    const text = await storedText(doc, this.opts.sealer);
    let written: number;
    try {
      written = await this.redis.ifxSavePolicy(this.opts.key, String(doc.version), text, this.channel);
    } catch (err) {
      throw new InferFluxError('policy_store_unavailable', `The policy store (${this.path}) could not be written: ${(err as Error).message}. Nothing was changed; retry.`, {
        retryAfter: 1,
      });
    }
    if (written !== 1) {
      // Another replica got there first; let our watchers pick up its document now.
      this.watches.checkAll();
      throw new InferFluxError('policy_conflict', undefined);
    }
  }

  watch(onDoc: (doc: PolicyDocument) => void): () => void {
    const check = {
      // The version field: reading it is cheap, decrypting the envelope is not.
      signature: () => this.redis.hget(this.opts.key, 'v'),
      load: () => this.load(),
      onDoc,
      log: this.opts.log,
      intervalMs: this.opts.watchIntervalMs,
    };
    return this.watches.start(check, (run) => {
      // Subscribing takes a connection of its own (a subscribed connection runs no other command).
      const sub = this.redis.duplicate();
      sub.on('error', () => {
        // The periodic check covers a broken subscription until it reconnects.
      });
      sub.on('message', (channel: string) => {
        if (channel === this.channel) run();
      });
      // ioredis re-subscribes after a reconnect; a check then catches what was missed meanwhile.
      sub.on('ready', run);
      void sub.subscribe(this.channel).catch(() => undefined);
      return () => sub.disconnect();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watches.stopAll();
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
