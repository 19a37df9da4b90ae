/**
 * The process's CPU cores as one budget shared by every engine worker thread, so llama.cpp
 * threads follow the work without ever oversubscribing the machine.
 *
 * Each engine worker claims threads from the budget right before a native decode and gives them
 * back right after. A worker normally claims its static share (`runtime.threads_per_worker`); a
 * step that carries many tokens (`runtime.prefill_spread_tokens`: a prompt chunk, or a decode step
 * of a packed batch) while every other engine worker is idle claims every free core, so a lone
 * long prompt or one batch of many streams is evaluated on all cores instead of one. A worker
 * that finds no free core waits (without blocking its thread) until a holder gives some back,
 * which is at most one step away: llama.cpp's CPU threads
 * spin-wait on each other, so running more of them than cores made decoding many times slower
 * (config/load.ts refuses such static sizings for the same reason), whereas waiting one step
 * costs at most that step.
 *
 * Why small steps do not spread: a 1-3 token step gains nothing from a second thread (llama.cpp's
 * own one-token decode does not either: llama-bench tg, 1 vs 2 threads). Before the persistent
 * thread pool (src/runtime/llama/threadpool) it lost: every multi-threaded decode started and
 * joined its threads. With the pool, spreading from 1 token or from 4 measured the same (bench/
 * README.md), so 4 stays. Nor do two busy workers take turns on every core: measured at 16 streams
 * (two batches of 8), waiting for all cores and running alone gave the same tok/s as running side
 * by side on one core each.
 *
 * Layout of the shared Int32Array: [FREE] free cores, [CORES] the total, then per engine slot a
 * busy flag and the threads it holds. Slots are handed out by the main thread (ActorSystem) and
 * reclaimed there when a worker exits, so a worker that dies holding threads leaks nothing.
 */

const FREE = 0;
const CORES = 1;
const HEADER = 2;
/** Engine worker slots one budget can track (models x workers); more share nothing and never spread. */
export const MAX_ENGINE_SLOTS = 256;
/**
 * A waiting worker looks again this often. A timer, not Atomics.waitAsync: in a worker thread
 * whose event loop has nothing else to do, a pending waitAsync was seen never to resolve (neither
 * by notify nor by its timeout), which would stall the engine; a wait is at most one step anyway.
 */
const WAIT_POLL_MS = 1;

const busyAt = (slot: number): number => HEADER + slot * 2;
const heldAt = (slot: number): number => HEADER + slot * 2 + 1;

/** Creates the shared memory of a budget of `cores` cores (main thread). */
export function createCoreBudget(cores: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer((HEADER + MAX_ENGINE_SLOTS * 2) * Int32Array.BYTES_PER_ELEMENT);
  const a = new Int32Array(sab);
  a[FREE] = cores;
  a[CORES] = cores;
  return sab;
}

/**
 * Returns what a dead or stopped worker's slot still held to the budget (main thread, after the
 * worker thread has exited, so nothing races with it on that slot).
 */
export function reclaimCoreSlot(sab: SharedArrayBuffer, slot: number): void {
  if (slot < 0 || slot >= MAX_ENGINE_SLOTS) return;
  const a = new Int32Array(sab);
  const held = Atomics.exchange(a, heldAt(slot), 0);
  Atomics.store(a, busyAt(slot), 0);
  if (held > 0) {
    Atomics.add(a, FREE, held);
  }
}

/** One engine worker's view of the budget (engine worker thread). */
export class CoreClaims {
  private readonly a: Int32Array;
  private busy = false;

  constructor(
    sab: SharedArrayBuffer,
    private readonly slot: number,
    /** Threads a normal step claims (the static share). */
    private readonly base: number,
    /** Tokens in one step from which it claims every free core while the others idle; 0 = never. */
    private readonly spreadTokens: number,
  ) {
    this.a = new Int32Array(sab);
    if (slot < 0 || slot >= MAX_ENGINE_SLOTS) throw new RangeError(`core budget slot ${slot} out of range`);
  }

  get cores(): number {
    return Atomics.load(this.a, CORES);
  }

  /**
   * Claims threads for one decode of `tokens` tokens; resolves with how many (>= 1). Give them
   * back with `release` once the decode returns.
   */
  async acquire(tokens: number): Promise<number> {
    if (!this.busy) {
      this.busy = true;
      Atomics.store(this.a, busyAt(this.slot), 1);
    }
    for (;;) {
      const want = this.spreadTokens > 0 && tokens >= this.spreadTokens && this.othersIdle() ? this.cores : this.base;
      const free = Atomics.load(this.a, FREE);
      if (free > 0) {
        const n = Math.min(want, free);
        if (Atomics.compareExchange(this.a, FREE, free, free - n) === free) {
          Atomics.add(this.a, heldAt(this.slot), n);
          return n;
        }
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
    }
  }

  release(n: number): void {
    Atomics.sub(this.a, heldAt(this.slot), n);
    Atomics.add(this.a, FREE, n);
  }

  /** Nothing to run: this worker no longer counts as busy, so a lone prompt elsewhere may spread. */
  idle(): void {
    if (!this.busy) return;
    this.busy = false;
    Atomics.store(this.a, busyAt(this.slot), 0);
  }

  private othersIdle(): boolean {
    for (let s = 0; s < MAX_ENGINE_SLOTS; s++) {
      if (s !== this.slot && Atomics.load(this.a, busyAt(s)) !== 0) return false;
    }
    return true;
  }
}
