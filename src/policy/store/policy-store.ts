/**
 * The policy store: one file holding the whole `PolicyDocument` (see envelope.ts for the format),
 * or, with `policy.redis_url`, one Redis hash (redis-policy-store.ts) behind the same interface.
 *
 * Writes are atomic and crash-safe: a temp file in the same directory is written, fsync'd and
 * renamed over the store, then the directory is fsync'd, so a reader (or a restart after a crash
 * at any point) sees either the old file or the new one, never a torn one. Leftover temp files of
 * a crashed writer are ignored (and swept once they are old).
 *
 * Replicas sharing the file: writers take a lock file (`<store>.lock`, file-lock.ts: O_EXCL, taken
 * over at once when its owner on this machine is dead, else once older than 10 s)
 * and refuse to write a version that is not newer than the one on disk (`policy_conflict`), so
 * two replicas never both write version N with different contents. Readers notice changes by
 * `fs.watch` on the directory plus a periodic check (a shared volume such as NFS may not deliver
 * watch events), and hand each newer document to the caller.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { InferFluxError } from '../../errors.js';
import type { PolicyPersistence } from '../policy-service.js';
import type { PolicyDocument } from '../types.js';
import { validateDocument } from './document-schema.js';
import { openEnvelope, PolicyStoreError, Sealer, storedText } from './envelope.js';
import { acquireFileLock } from './file-lock.js';
import { RedisPolicyStore } from './redis-policy-store.js';
import { StoreWatches } from './store-watch.js';
import type { PolicyStore } from './store.js';

export type { PolicyStore };

export interface PolicyStoreOptions {
  /** Absolute path of the store file (unused when `redisUrl` is set). */
  path: string;
  /** When set, the store lives in this Redis instead of the file (redis-policy-store.ts). */
  redisUrl?: string;
  /** The Redis hash of the store. Defaults to `inferflux:policy`. */
  redisKey?: string;
  /** Encrypts the file when set (non-empty); plaintext JSON otherwise (keys are hashes either way). */
  passphrase?: string | null | undefined;
  log?: (msg: string) => void;
  /** Periodic check for changes by other replicas. Defaults to 5000 ms. */
  watchIntervalMs?: number;
}

const LOCK_STALE_MS = 10_000;
const LOCK_WAIT_MS = 5_000;
const TEMP_STALE_MS = 10 * 60_000;

export function openPolicyStore(opts: PolicyStoreOptions): PolicyStore {
  if (opts.redisUrl) {
    return new RedisPolicyStore({
      url: opts.redisUrl,
      key: opts.redisKey ?? 'inferflux:policy',
      sealer: opts.passphrase ? new Sealer(opts.passphrase) : null,
      log: opts.log ?? (() => {}),
      watchIntervalMs: opts.watchIntervalMs ?? 5000,
    });
  }
  return new FilePolicyStore(opts);
}

class FilePolicyStore implements PolicyStore {
  readonly path: string;
  readonly encrypted: boolean;
  private readonly dir: string;
  private readonly base: string;
  private readonly sealer: Sealer | null;
  private readonly log: (msg: string) => void;
  private readonly intervalMs: number;
  private readonly watches = new StoreWatches();
  private closed = false;

  constructor(opts: PolicyStoreOptions) {
    this.path = opts.path;
    this.dir = dirname(opts.path);
    this.base = basename(opts.path);
    this.sealer = opts.passphrase ? new Sealer(opts.passphrase) : null;
    this.encrypted = this.sealer !== null;
    this.log = opts.log ?? (() => {});
    this.intervalMs = opts.watchIntervalMs ?? 5000;
  }

  async load(): Promise<PolicyDocument | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new PolicyStoreError(this.path, 'malformed', `cannot read: ${(err as Error).message}`);
    }
    return validateDocument(this.path, await openEnvelope(this.path, text, this.sealer));
  }

  async save(doc: PolicyDocument): Promise<void> {
    if (this.closed) throw new InferFluxError('shutting_down', 'the policy store is closed');
    const text = await storedText(doc, this.sealer);
    await mkdir(this.dir, { recursive: true });
    const unlock = await this.lock();
    try {
      const onDisk = await this.load();
      if (onDisk && onDisk.version >= doc.version) {
        // Another replica got there first; let our watchers pick up its document now.
        this.watches.checkAll();
        throw new InferFluxError('policy_conflict', undefined);
      }
      await this.writeAtomically(text);
    } finally {
      await unlock();
    }
  }

  watch(onDoc: (doc: PolicyDocument) => void): () => void {
    const check = {
      signature: async () => {
        const st = await stat(this.path).catch(() => null);
        return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : null;
      },
      load: () => this.load(),
      onDoc,
      log: this.log,
      intervalMs: this.intervalMs,
    };
    return this.watches.start(check, (run) => {
      let fsw: FSWatcher | null = null;
      let debounce: NodeJS.Timeout | null = null;
      try {
        fsw = fsWatch(this.dir, { persistent: false }, (_event, name) => {
          if (name !== null && name !== this.base) return;
          if (debounce) clearTimeout(debounce);
          debounce = setTimeout(run, 25);
        });
        fsw.on('error', () => {
          // The directory went away or the watch broke; the periodic check still runs.
          fsw?.close();
          fsw = null;
        });
      } catch {
        // No directory yet (nothing saved) or no inotify: the periodic check covers it.
      }
      return () => {
        if (debounce) clearTimeout(debounce);
        fsw?.close();
      };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watches.stopAll();
  }

  private async writeAtomically(text: string): Promise<void> {
    const tmp = join(this.dir, `.${this.base}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    // The rename is durable only once the directory entry is.
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    void this.sweepTemps();
  }

  /** Removes temp files crashed writers left behind, once they are clearly abandoned. */
  private async sweepTemps(): Promise<void> {
    try {
      const prefix = `.${this.base}.`;
      for (const name of await readdir(this.dir)) {
        if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
        const p = join(this.dir, name);
        const st = await stat(p).catch(() => null);
        if (st && Date.now() - st.mtimeMs > TEMP_STALE_MS) await rm(p, { force: true });
      }
    } catch {
      // Best effort only.
    }
  }

  /** Cross-process writer lock (file-lock.ts): a dead writer's lock is taken over at once. */
  private lock(): Promise<() => Promise<void>> {
    const lockPath = `${this.path}.lock`;
    return acquireFileLock(lockPath, { waitMs: LOCK_WAIT_MS, staleMs: LOCK_STALE_MS }, () => new InferFluxError('policy_conflict', `the policy store is locked by another writer (${lockPath})`));
  }
}
