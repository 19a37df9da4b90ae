/**
 * Start-up of the live policy: open the store, read it (a tampered, undecryptable or invalid file
 * stops start-up with an error naming the file: never a silent reset), merge it with the config
 * (`initialPolicy`), make the store the service's persistence, and adopt what other replicas
 * write to the shared file.
 */
import type { PolicyStoreConfig } from '../../config/types.js';
import { PolicyService } from '../policy-service.js';
import { initialPolicy, type PolicyDefaults } from './initial-policy.js';
import type { Log } from '../../log/logger.js';
import { openPolicyStore, type PolicyStore } from './policy-store.js';

export interface StartPolicyOptions {
  /** The `policy` config section: the store file, or the Redis that holds the store, and the watch interval. */
  store: PolicyStoreConfig;
  /** `INFERFLUX_POLICY_PASSPHRASE`; empty or undefined = plaintext store (with a warning). */
  passphrase: string | undefined;
  defaults: PolicyDefaults;
  log: Log;
}

export interface LivePolicy {
  service: PolicyService;
  store: PolicyStore;
  /** Stops watching the store. */
  close(): Promise<void>;
}

export async function startPolicy(opts: StartPolicyOptions): Promise<LivePolicy> {
  const { log, defaults } = opts;
  const cfg = opts.store;
  const store = openPolicyStore({
    path: cfg.storePath,
    redisUrl: cfg.redisUrl,
    redisKey: cfg.redisKey,
    passphrase: opts.passphrase || null,
    log,
    watchIntervalMs: cfg.watchIntervalSeconds * 1000,
  });
  let stored;
  try {
    stored = await store.load();
  } catch (err) {
    // Nothing else holds the Redis connection open: close it so the failed start can exit.
    await store.close();
    throw err;
  }
  if (!store.encrypted) {
    log.warn(
      `policy store ${store.path} is plaintext JSON (keys are stored as SHA-256 hashes only); ` +
        'set INFERFLUX_POLICY_PASSPHRASE to encrypt it (AES-256-GCM)',
    );
  }
  const service = new PolicyService(initialPolicy(defaults, stored), store);
  const d = service.current;
  log(
    `policy store ${store.path}: ${stored ? `version ${stored.version}` : `${cfg.redisUrl ? 'nothing stored yet' : 'no file yet'} (created on the first admin change)`}, ` +
      `${d.apiKeys.filter((k) => k.origin !== 'store').length} configured key(s), ${d.apiKeys.filter((k) => k.origin === 'store').length} stored key(s)`,
  );
  const unwatch = store.watch((doc) => {
    if (service.adopt(initialPolicy(defaults, doc))) log(`policy store: adopted version ${doc.version} written by another replica`);
  });
  return {
    service,
    store,
    async close() {
      unwatch();
      await store.close();
    },
  };
}
