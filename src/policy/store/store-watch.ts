/**
 * The change check both policy stores run for `watch`: a cheap signature of what is stored (file
 * identity and mtime, or the version field in Redis) and, only when it changed, a full load and
 * decryption; documents newer than the last one seen go to `onDoc`. It checks at once, then every
 * `intervalMs`; each store adds its own trigger (file watch, publish). Checks never overlap: one
 * asked for while another runs is run right after it. An unreadable store keeps the current
 * policy and is reported once per distinct error.
 */
import type { PolicyDocument } from '../types.js';

export interface StoreCheckOptions {
  /** Changes whenever the stored document may have; null when nothing is stored. */
  signature(): Promise<string | null>;
  load(): Promise<PolicyDocument | null>;
  onDoc(doc: PolicyDocument): void;
  log(msg: string): void;
  /** The periodic check (the fallback for missed triggers); the first check runs at once. */
  intervalMs: number;
}

export interface StoreChecker {
  check(): void;
  /** Stops the timer; no check starts after this (one running finishes). */
  stop(): void;
}

export function storeChecker(opts: StoreCheckOptions): StoreChecker {
  let lastSeen: string | null = null;
  let lastVersion = -1;
  let lastError = '';
  let running = false;
  let again = false;
  let stopped = false;
  const run = async (): Promise<void> => {
    try {
      const sig = await opts.signature();
      if (sig === null || sig === lastSeen) return;
      const doc = await opts.load();
      lastSeen = sig;
      lastError = '';
      if (doc && doc.version > lastVersion) {
        lastVersion = doc.version;
        opts.onDoc(doc);
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (msg !== lastError) opts.log(`policy store watch: ${msg}; keeping the current policy`);
      lastError = msg;
    }
  };
  const check = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    void run().finally(() => {
      running = false;
      if (again) {
        again = false;
        check();
      }
    });
  };
  const timer = setInterval(check, opts.intervalMs);
  timer.unref();
  check();
  return {
    check,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/**
 * A store's running watches: each is a checker plus the store's own triggers (installed when it
 * starts, torn down when it stops). `checkAll` after a write conflict, `stopAll` on close.
 */
export class StoreWatches {
  private readonly all = new Set<{ check: () => void; stop: () => void }>();

  /** Starts one watch; `triggers` gets its check and returns their teardown. Returns the unsubscribe. */
  start(opts: StoreCheckOptions, triggers: (check: () => void) => () => void): () => void {
    const checker = storeChecker(opts);
    const teardown = triggers(checker.check);
    const entry = {
      check: checker.check,
      stop: () => {
        checker.stop();
        teardown();
      },
    };
    this.all.add(entry);
    return () => {
      entry.stop();
      this.all.delete(entry);
    };
  }

  checkAll(): void {
    for (const w of this.all) w.check();
  }

  stopAll(): void {
    for (const w of this.all) w.stop();
    this.all.clear();
  }
}
