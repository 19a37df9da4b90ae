/**
 * Host memory for KV snapshots: a budget of `cpuPages` fixed-size pages
 * (`runtime.paged_kv.cpu_pages`, `INFERFLUX_KV_CPU_PAGES`).
 *
 * A snapshot (llama.cpp sequence state bytes, tens of KB per token) is copied once into as many
 * pages as it needs. Pages are allocated on first need, or ahead of it (`allocateAhead`, which
 * the engine worker calls while idle), and go back to a free list when their snapshot leaves, so
 * steady-state operation allocates nothing. Page buffers are plain `Uint8Array`s owned by this pool.
 *
 * When a `put()` needs more pages than are free, whole snapshots are evicted (never single
 * pages: a partial llama.cpp state is useless) by the configured policy
 * (`runtime.paged_kv.eviction`, `INFERFLUX_KV_EVICTION`):
 *   - `lru`: the least recently put/read snapshot goes first (a Map kept in recency order).
 *   - `clock`: second chance. Snapshots sit on a ring; a read sets a reference bit; the hand
 *     clears set bits and evicts the first snapshot whose bit is clear. New snapshots start
 *     with the bit clear, so a snapshot must be read again to earn its second chance. Cheaper
 *     per read than LRU (no reordering), close to LRU in hit rate.
 * A leased snapshot (see `acquire()`) is pinned and is never a victim. `onEvict` sees the pages
 * of each victim before they are reused, so the owner can spill them to disk.
 *
 * Pure and synchronous: no timers, no I/O. One pool belongs to one engine worker thread.
 */

export type EvictionPolicy = 'lru' | 'clock';

/** Bytes per page. 256 KiB: ~11 tokens of an 8B model's state, ~30 of the bench model. */
export const DEFAULT_PAGE_BYTES = 256 * 1024;

export interface PagePoolOptions {
  /** Page budget; the pool never holds more pages than this. `runtime.paged_kv.cpu_pages`. */
  cpuPages: number;
  /** Bytes per page. Defaults to `262144` (256 KiB). */
  pageBytes?: number;
  /** Victim choice when space is needed. `runtime.paged_kv.eviction`. Defaults to `lru`. */
  eviction?: EvictionPolicy;
  /**
   * Called synchronously for each evicted snapshot, before its pages are reused. `pages` are
   * views into pool memory: copy what you keep (e.g. `concatPages()` for a disk write). Must not
   * call back into the pool.
   */
  onEvict?: (id: string, snapshot: SnapshotPages) => void;
}

/** A snapshot as the pool holds it: full pages, the last one used up to `byteLength`. */
export interface SnapshotPages {
  /** Page views; the last is trimmed to the snapshot's end. Valid while leased or in `onEvict`. */
  readonly pages: readonly Uint8Array[];
  readonly byteLength: number;
}

/** Pages handed out by `reserve()`: fill `pages` (the last trimmed to the end), then settle once. */
export interface PageReservation extends SnapshotPages {
  /** Publishes the snapshot; false when the pool was disposed meanwhile. */
  commit(): boolean;
  /** Gives the pages back unused. */
  cancel(): void;
}

/** A pinned, zero-copy view of one snapshot. Release it when done (idempotent). */
export interface PageLease extends SnapshotPages {
  readonly id: string;
  release(): void;
}

export interface PagePoolStats {
  pagesTotal: number;
  /** Pages held by snapshots, including deleted snapshots still leased. */
  pagesUsed: number;
  /** Page buffers ever allocated (used + free list). */
  pagesAllocated: number;
  pageBytes: number;
  snapshots: number;
  bytesStored: number;
  pinned: number;
  evictions: number;
}

export class DisposedError extends Error {
  constructor(what: string) {
    super(`${what} is disposed`);
    this.name = 'DisposedError';
  }
}

/** @internal */
interface Snap {
  readonly id: string;
  pages: Uint8Array[];
  byteLength: number;
  pins: number;
  /** Clock reference bit. */
  ref: boolean;
  /** False once deleted/replaced while leased; pages are freed at the last release. */
  live: boolean;
}

/** Concatenate page views into one fresh buffer (one copy). */
export function concatPages(snap: SnapshotPages): Uint8Array {
  const out = new Uint8Array(snap.byteLength);
  let off = 0;
  for (const p of snap.pages) (out.set(p, off), (off += p.length));
  return out;
}

export class PagePool {
  readonly pageBytes: number;
  readonly cpuPages: number;
  readonly eviction: EvictionPolicy;
  private readonly onEvict: ((id: string, s: SnapshotPages) => void) | undefined;
  /** Live snapshots; for `lru` the Map order is recency order (oldest first). */
  private readonly snaps = new Map<string, Snap>();
  /** Clock ring (only for `clock`) and its hand. */
  private readonly ring: Snap[] = [];
  private hand = 0;
  private readonly free: Uint8Array[] = [];
  private allocated = 0;
  private used = 0;
  private bytes = 0;
  private evictions = 0;
  private disposed = false;

  constructor(opts: PagePoolOptions) {
    const pageBytes = opts.pageBytes ?? DEFAULT_PAGE_BYTES;
    if (!Number.isSafeInteger(opts.cpuPages) || opts.cpuPages < 0) throw new RangeError('cpuPages must be an integer >= 0');
    if (!Number.isSafeInteger(pageBytes) || pageBytes < 1) throw new RangeError('pageBytes must be an integer >= 1');
    const eviction = opts.eviction ?? 'lru';
    if (eviction !== 'lru' && eviction !== 'clock') throw new RangeError(`unknown eviction policy: ${String(eviction)}`);
    this.cpuPages = opts.cpuPages;
    this.pageBytes = pageBytes;
    this.eviction = eviction;
    this.onEvict = opts.onEvict;
  }

  /** Pages a snapshot of `byteLength` bytes needs. */
  pagesFor(byteLength: number): number {
    return Math.ceil(byteLength / this.pageBytes);
  }

  /**
   * Copy a snapshot in (given whole or as chunks), evicting others if needed. Replaces a
   * snapshot with the same id (its leases stay valid). Returns false, evicting nothing, when it
   * cannot fit: larger than the whole budget, or too many pages pinned.
   */
  put(id: string, data: Uint8Array | readonly Uint8Array[]): boolean {
    const chunks = data instanceof Uint8Array ? [data] : data;
    let byteLength = 0;
    for (const c of chunks) byteLength += c.length;
    const r = this.reserve(id, byteLength);
    if (r === null) return false;
    // One copy, chunk by chunk into consecutive pages.
    let page = 0;
    let pageOff = 0;
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) {
        const n = Math.min(c.length - off, this.pageBytes - pageOff);
        r.pages[page]!.set(c.subarray(off, off + n), pageOff);
        off += n;
        pageOff += n;
        if (pageOff === this.pageBytes) (page++, (pageOff = 0));
      }
    }
    return r.commit();
  }

  /**
   * Pages for a snapshot of `byteLength` bytes that the caller fills itself (e.g. reading a state
   * file straight into them, with no buffer of the whole snapshot in between), then `commit()`s
   * under `id` or `cancel()`s. Evicts like `put()` and replaces a snapshot with the same id the
   * same way; null, evicting nothing, when it cannot fit. Until settled the pages count as used
   * and belong to nobody else.
   */
  reserve(id: string, byteLength: number): PageReservation | null {
    this.ensureNotDisposed();
    const need = this.pagesFor(byteLength);
    if (need > this.cpuPages) return null;
    // Check before touching anything, so a failed reserve evicts nothing. (An unpinned old
    // version of this id counts as evictable: replacing it frees its pages.)
    if (this.cpuPages - this.used < need && this.cpuPages - this.used + this.evictablePages() < need) return null;
    const old = this.snaps.get(id);
    if (old !== undefined) this.unlink(old);
    while (this.cpuPages - this.used < need) {
      const victim = this.pickVictim();
      if (victim === null) return null; // unreachable: evictablePages() said enough exists
      this.evict(victim);
    }
    const pages: Uint8Array[] = new Array(need);
    for (let p = 0; p < need; p++) pages[p] = this.free.pop() ?? this.allocPage();
    this.used += need;
    const snap: Snap = { id, pages, byteLength, pins: 0, ref: false, live: true };
    let settled = false;
    return {
      pages: this.view(snap).pages,
      byteLength,
      commit: () => {
        if (settled) return false;
        settled = true;
        // Disposed meanwhile: the pages went with the pool.
        if (this.disposed) return false;
        const other = this.snaps.get(id);
        if (other !== undefined) this.unlink(other);
        this.snaps.set(id, snap);
        if (this.eviction === 'clock') this.ring.push(snap);
        this.bytes += byteLength;
        return true;
      },
      cancel: () => {
        if (settled) return;
        settled = true;
        this.freePages(snap);
      },
    };
  }

  /** Pages of the budget not allocated yet. */
  get unallocated(): number {
    return this.cpuPages - this.allocated;
  }

  /**
   * Allocates up to `max` of the budget's pages ahead of their first snapshot, onto the free
   * list, after `prime` has written them once. Why: the first write into fresh memory pays its
   * page faults (~3 ms per MiB on a VM; KvTier.primeHostPages), which would otherwise fall on the
   * engine step that saves a snapshot into it. Returns how many pages it added.
   */
  allocateAhead(max: number, prime: (pages: readonly Uint8Array[]) => void): number {
    this.ensureNotDisposed();
    const n = Math.max(0, Math.min(max, this.unallocated));
    if (n === 0) return 0;
    // One backing store for the chunk. With one per page (512 a worker), V8's GC kept an idle
    // engine worker busy 117 ms of an 11 s load (`npm run bench:profile -- --clients 4`); 0 with one per chunk.
    const slab = new Uint8Array(n * this.pageBytes);
    this.allocated += n;
    const pages = Array.from({ length: n }, (_, i) => slab.subarray(i * this.pageBytes, (i + 1) * this.pageBytes));
    try {
      prime(pages);
    } catch (err) {
      this.allocated -= n; // never handed out: the budget still has them
      throw err;
    }
    this.free.push(...pages);
    return n;
  }

  has(id: string): boolean {
    return this.snaps.has(id);
  }

  /** Byte length of a stored snapshot, or -1. Does not count as a use. */
  sizeOf(id: string): number {
    return this.snaps.get(id)?.byteLength ?? -1;
  }

  /** A copy of the snapshot's bytes (counts as a use), or null. Prefer `acquire()` to avoid it. */
  get(id: string): Uint8Array | null {
    const snap = this.snaps.get(id);
    if (snap === undefined) return null;
    this.touch(snap);
    return concatPages(this.view(snap));
  }

  /**
   * Pin a snapshot and return zero-copy page views (counts as a use), or null. While leased it
   * cannot be evicted, and its pages stay valid even if it is deleted or replaced. Write the
   * views straight to a file with `fs.writevSync(fd, lease.pages)`, then `release()`.
   */
  acquire(id: string): PageLease | null {
    this.ensureNotDisposed();
    const snap = this.snaps.get(id);
    if (snap === undefined) return null;
    this.touch(snap);
    snap.pins++;
    let released = false;
    const view = this.view(snap);
    return {
      id,
      pages: view.pages,
      byteLength: view.byteLength,
      release: () => {
        if (released) return;
        released = true;
        snap.pins--;
        if (snap.pins === 0 && !snap.live) this.freePages(snap);
      },
    };
  }

  /** Remove a snapshot (not an eviction: no callback). Leased pages are freed at release. */
  delete(id: string): boolean {
    const snap = this.snaps.get(id);
    if (snap === undefined) return false;
    this.unlink(snap);
    return true;
  }

  /** Ids of live snapshots, oldest first for `lru`, ring order for `clock`. */
  ids(): string[] {
    return this.eviction === 'clock' ? this.ring.map((s) => s.id) : [...this.snaps.keys()];
  }

  stats(): PagePoolStats {
    let pinned = 0;
    for (const s of this.snaps.values()) if (s.pins > 0) pinned++;
    return {
      pagesTotal: this.cpuPages,
      pagesUsed: this.used,
      pagesAllocated: this.allocated,
      pageBytes: this.pageBytes,
      snapshots: this.snaps.size,
      bytesStored: this.bytes,
      pinned,
      evictions: this.evictions,
    };
  }

  /** Drop every snapshot and page buffer. Outstanding leases keep their views alive (GC). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.snaps.values()) s.live = false;
    this.snaps.clear();
    this.ring.length = 0;
    this.free.length = 0;
    this.used = 0;
    this.bytes = 0;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private view(snap: Snap): SnapshotPages {
    const pages = snap.pages.slice();
    const tail = snap.byteLength - (pages.length - 1) * this.pageBytes;
    if (pages.length > 0 && tail < this.pageBytes) pages[pages.length - 1] = pages[pages.length - 1]!.subarray(0, tail);
    return { pages, byteLength: snap.byteLength };
  }

  private touch(snap: Snap): void {
    if (this.eviction === 'clock') {
      snap.ref = true;
    } else {
      this.snaps.delete(snap.id);
      this.snaps.set(snap.id, snap);
    }
  }

  private evictablePages(): number {
    let n = 0;
    for (const s of this.snaps.values()) if (s.pins === 0) n += s.pages.length;
    return n;
  }

  private pickVictim(): Snap | null {
    if (this.eviction === 'lru') {
      for (const s of this.snaps.values()) if (s.pins === 0) return s;
      return null;
    }
    // Two full sweeps suffice: the first clears every reference bit it passes.
    const ring = this.ring;
    for (let steps = 0; steps <= 2 * ring.length; steps++) {
      if (this.hand >= ring.length) this.hand = 0;
      const s = ring[this.hand]!;
      if (s.pins === 0 && !s.ref) return s;
      if (s.pins === 0) s.ref = false;
      this.hand++;
    }
    return null;
  }

  private evict(snap: Snap): void {
    this.evictions++;
    // Hand the pages out before they can be reused.
    this.onEvict?.(snap.id, this.view(snap));
    if (this.snaps.get(snap.id) === snap) this.unlink(snap);
  }

  /** Take a snapshot out of the index; free its pages now, or at its last lease release. */
  private unlink(snap: Snap): void {
    this.snaps.delete(snap.id);
    if (this.eviction === 'clock') {
      const at = this.ring.indexOf(snap);
      if (at >= 0) {
        this.ring.splice(at, 1);
        if (at < this.hand) this.hand--;
      }
    }
    this.bytes -= snap.byteLength;
    snap.live = false;
    if (snap.pins === 0) this.freePages(snap);
  }

  private freePages(snap: Snap): void {
    if (this.disposed) return;
    for (const p of snap.pages) this.free.push(p);
    this.used -= snap.pages.length;
    snap.pages = [];
  }

  private allocPage(): Uint8Array {
    this.allocated++;
    return new Uint8Array(this.pageBytes);
  }

  private ensureNotDisposed(): void {
    if (this.disposed) throw new DisposedError('PagePool');
  }
}
