/**
 * The prefix cache of one engine worker: a radix trie per namespace (model + weights fingerprint
 * + adapter + context layout, see `prefixNamespace()`) mapping token prefixes to KV snapshots,
 * which live in a host page pool and spill to a disk tier.
 *
 * Typical use in the engine worker (everything but `load()` of a disk hit is synchronous):
 *
 *   const r = cache.lookup(ns, prompt);                 // counts hit / partial / miss
 *   if (r.kind === 'host') {
 *     const lease = cache.acquireHost(r)!;              // zero-copy page views, pinned
 *     try { fs.writevSync(fd, lease.pages); } finally { lease.release(); }
 *   } else if (r.kind === 'disk') {
 *     fs.writeFileSync(shmPath, await cache.load(r));   // verified; promoted back to host
 *   }
 *   // then seq.loadStateFromFile(shmPath), trim to min(r.length, prompt.length - 1) tokens
 *   // (at least one prompt token must be evaluated to get logits), evaluate the rest.
 *   ...
 *   cache.store(ns, stateTokens, bytesOfSavedState);    // after prefill / at the end of a turn
 *
 * Lookup outcomes (exactly one per `lookup()`; `peek()` counts nothing):
 *   - hit: some stored snapshot's tokens are a prefix of the request and it is at least
 *     `minTokens` long. The longest such snapshot is returned. `length` = its token count, which
 *     is added to `matchedTokens` (`inferflux_prefix_matched_tokens_total`: prompt tokens served
 *     from snapshots instead of being evaluated). Counts `hits` (`inferflux_prefix_hits_total`).
 *   - partial: no such snapshot, but the request shares at least `minTokens` leading tokens
 *     with some stored key (e.g. the same system prompt, then a different question).
 *     Nothing is reusable from the cache, but the scheduler can place the request where a live
 *     sequence holds that prefix. Counts `partialHits` (`inferflux_prefix_partial_hits_total`)
 *     and adds the shared length to `partialTokens` (status only).
 *   - miss: everything else. Counts `misses` (`inferflux_prefix_misses_total`).
 * `hits + partialHits + misses = lookups`. A hit's `matched` (the longest shared prefix with any
 * stored key, >= `length`) is reported too, for placement.
 *
 * Tiers: `store()` copies into the host pool. When the pool evicts a snapshot to make room it is
 * spilled to disk (if enabled and the write queue has room, else dropped from the cache). A disk
 * hit is read and checksum-verified by `load()` and put back into host memory; its disk copy
 * stays, so a later host eviction costs no second write. A disk entry the tier drops (budget,
 * corruption) leaves the trie unless it is also in host memory. Disk entries are re-indexed on
 * `open()`, so the cache is warm after a restart as soon as `open()` resolves.
 */
import { DiskTier, type DiskRemoveReason, type DiskTierOptions, type DiskTierStats } from './disk-tier.js';
import { concatPages, PagePool, type EvictionPolicy, type PageLease, type PagePoolStats, type SnapshotPages } from './page-pool.js';
import { RadixTrie, type TokenSeq } from './radix-trie.js';
import { snapshotId, type SnapshotId } from './snapshot-key.js';

export const DEFAULT_MIN_TOKENS = 32;

export interface PrefixCacheOptions {
  /** Shortest prefix worth a snapshot, and shortest shared prefix counted as partial. Defaults to `32`. */
  minTokens?: number;
  /** Host page budget. `runtime.paged_kv.cpu_pages`. */
  cpuPages: number;
  /** Bytes per host page. Defaults to `262144` (256 KiB). */
  pageBytes?: number;
  /** Host eviction policy. `runtime.paged_kv.eviction`. Defaults to `lru`. */
  eviction?: EvictionPolicy;
  /** Disk tier (`runtime.nvme_offload.*`), or null/absent for host only. Defaults to `null`. */
  disk?: Omit<DiskTierOptions, 'onRemove'> | null;
}

export interface PrefixHit {
  kind: 'host' | 'disk';
  ns: string;
  id: SnapshotId;
  /** Tokens covered by the snapshot; a prefix of the request. */
  length: number;
  /** Longest prefix the request shares with any stored key (>= `length`). */
  matched: number;
}

export interface PrefixMiss {
  kind: 'miss';
  /** Shared prefix length when this lookup counted as a partial hit (>= `minTokens`), else 0. */
  partialLength: number;
}

export type PrefixLookup = PrefixHit | PrefixMiss;

export type StoreResult =
  | 'host'
  /** Too big for the host pool; queued straight to disk. */
  | 'disk'
  /** Already in host memory (touched). */
  | 'exists'
  /** Shorter than `minTokens`. */
  | 'too_short'
  /** Fits nowhere (host full of pinned snapshots or too small, disk off or its queue full). */
  | 'no_space';

/** Monotonic counters; the owner exports them as Prometheus counters. Never reset. */
export interface PrefixCounters {
  lookups: number;
  hits: number;
  hostHits: number;
  diskHits: number;
  partialHits: number;
  misses: number;
  matchedTokens: number;
  partialTokens: number;
  stores: number;
  spills: number;
  spillsDropped: number;
  promotions: number;
  loadFailures: number;
}

/** `GET /v1/admin/cache` body (per worker). */
export interface PrefixCacheStatus {
  entries: number;
  hostEntries: number;
  diskEntries: number;
  namespaces: number;
  minTokens: number;
  host: PagePoolStats;
  disk: (DiskTierStats & { enabled: true; path: string }) | { enabled: false };
  counters: PrefixCounters;
}

export class PrefixCacheError extends Error {
  readonly code: 'gone';
  constructor(message: string) {
    super(message);
    this.name = 'PrefixCacheError';
    this.code = 'gone';
  }
}

/** @internal */
interface Entry {
  readonly id: SnapshotId;
  readonly ns: string;
  readonly tokens: Uint32Array;
  host: boolean;
  disk: boolean;
}

export class PrefixCache {
  readonly minTokens: number;
  private readonly pool: PagePool;
  private disk: DiskTier | null = null;
  private readonly tries = new Map<string, RadixTrie<Entry>>();
  private readonly entries = new Map<SnapshotId, Entry>();
  private readonly c: PrefixCounters = {
    lookups: 0, hits: 0, hostHits: 0, diskHits: 0, partialHits: 0, misses: 0, matchedTokens: 0,
    partialTokens: 0, stores: 0, spills: 0, spillsDropped: 0, promotions: 0, loadFailures: 0,
  };

  /** Build a cache; with a disk tier, its index is recovered and re-inserted first. */
  static async open(opts: PrefixCacheOptions): Promise<PrefixCache> {
    const cache = new PrefixCache(opts);
    if (opts.disk) {
      const disk = await DiskTier.open({ ...opts.disk, onRemove: (id, why) => cache.onDiskRemove(id, why) });
      cache.disk = disk;
      for (const d of [...disk.entries()]) {
        if (d.tokens.length < cache.minTokens) {
          disk.delete(d.id);
          continue;
        }
        const e: Entry = { id: d.id, ns: d.ns, tokens: d.tokens, host: false, disk: true };
        cache.entries.set(e.id, e);
        cache.trie(e.ns).insert(e.tokens, e);
      }
    }
    return cache;
  }

  private constructor(opts: PrefixCacheOptions) {
    const minTokens = opts.minTokens ?? DEFAULT_MIN_TOKENS;
    if (!Number.isSafeInteger(minTokens) || minTokens < 1) throw new RangeError('minTokens must be an integer >= 1');
    this.minTokens = minTokens;
    this.pool = new PagePool({
      cpuPages: opts.cpuPages,
      pageBytes: opts.pageBytes,
      eviction: opts.eviction,
      onEvict: (id, pages) => this.onHostEvict(id as SnapshotId, pages),
    });
  }

  /** Find the longest reusable snapshot for `tokens`, and count the outcome. */
  lookup(ns: string, tokens: TokenSeq): PrefixLookup {
    const r = this.peek(ns, tokens);
    this.c.lookups++;
    if (r.kind === 'miss') {
      if (r.partialLength > 0) (this.c.partialHits++, (this.c.partialTokens += r.partialLength));
      else this.c.misses++;
    } else {
      this.c.hits++;
      this.c.matchedTokens += r.length;
      if (r.kind === 'host') this.c.hostHits++;
      else this.c.diskHits++;
    }
    return r;
  }

  /** `lookup()` without counting (for placement decisions); does not touch recency either. */
  peek(ns: string, tokens: TokenSeq): PrefixLookup {
    const m = this.tries.get(ns)?.match(tokens);
    if (m === undefined) return { kind: 'miss', partialLength: 0 };
    const e = m.value;
    if (m.found && e !== undefined && m.length >= this.minTokens) {
      return { kind: e.host ? 'host' : 'disk', ns, id: e.id, length: m.length, matched: m.matched };
    }
    return { kind: 'miss', partialLength: m.matched >= this.minTokens ? m.matched : 0 };
  }

  /**
   * Cache the state for exactly `tokens` (bytes copied into host pages; the caller keeps its
   * buffer). Synchronous; a spill caused by making room is queued, never awaited.
   */
  store(ns: string, tokens: TokenSeq, bytes: Uint8Array | readonly Uint8Array[]): StoreResult {
    if (tokens.length < this.minTokens) return 'too_short';
    const id = snapshotId(ns, tokens);
    const existing = this.entries.get(id);
    if (existing?.host) {
      this.pool.acquire(id)?.release(); // touch
      return 'exists';
    }
    this.c.stores++;
    if (this.pool.put(id, bytes)) {
      const e = existing ?? this.addEntry(id, ns, tokens);
      e.host = true;
      return 'host';
    }
    if (existing?.disk) return 'exists';
    if (this.disk !== null) {
      const chunks = bytes instanceof Uint8Array ? [bytes] : bytes;
      const copy = concatPages({ pages: chunks, byteLength: chunks.reduce((n, c) => n + c.length, 0) });
      const r = this.disk.spill(ns, tokens, copy, id);
      if (r === 'queued' || r === 'exists') {
        this.c.spills++;
        (existing ?? this.addEntry(id, ns, tokens)).disk = true;
        return 'disk';
      }
      this.c.spillsDropped++;
    }
    return 'no_space';
  }

  /** Host pages not allocated yet, and `PagePool.allocateAhead` for them (KvTier.primeHostPages). */
  get hostPagesUnallocated(): number {
    return this.pool.unallocated;
  }

  allocateHostAhead(max: number, prime: (pages: readonly Uint8Array[]) => void): number {
    return this.pool.allocateAhead(max, prime);
  }

  /**
   * `store()` for bytes the caller writes itself, e.g. a state file read straight into host
   * pages: `fill` gets pages for exactly `byteLength` bytes and must fill them all (a rejection
   * stores nothing and is passed on). When the host pool cannot take the snapshot, `fill` gets
   * one buffer instead and `store()` takes it from there (the disk tier).
   */
  async storeWith(ns: string, tokens: TokenSeq, byteLength: number, fill: (pages: readonly Uint8Array[]) => Promise<void>): Promise<StoreResult> {
    if (tokens.length < this.minTokens) return 'too_short';
    const id = snapshotId(ns, tokens);
    const existing = this.entries.get(id);
    if (existing?.host) return this.store(ns, tokens, []); // touches it: 'exists'
    const pages = this.pool.reserve(id, byteLength);
    if (pages === null) {
      const whole = new Uint8Array(byteLength);
      await fill([whole]);
      return this.store(ns, tokens, whole);
    }
    try {
      await fill(pages.pages);
    } catch (err) {
      pages.cancel();
      throw err;
    }
    this.c.stores++;
    if (!pages.commit()) return 'no_space';
    (this.entries.get(id) ?? this.addEntry(id, ns, tokens)).host = true;
    return 'host';
  }

  /**
   * Pin a host hit and return zero-copy page views; null when it is no longer in host memory
   * (then use `load()`). Counts as a use. Release the lease promptly.
   */
  acquireHost(hit: PrefixHit): PageLease | null {
    return this.pool.acquire(hit.id);
  }

  /**
   * The hit's bytes: a copy from host memory (resolved at once), or read and verified from disk
   * and promoted to host memory. Rejects with `PrefixCacheError` (`gone`) when the entry left
   * the cache since the lookup, or with the disk tier's `DiskTierError` (the bad entry is
   * dropped). Treat a rejection as a miss.
   */
  async load(hit: PrefixHit): Promise<Uint8Array> {
    const e = this.entries.get(hit.id);
    const fromHost = e?.host ? this.pool.get(hit.id) : null;
    if (fromHost !== null) return fromHost;
    if (e === undefined || !e.disk || this.disk === null) {
      this.c.loadFailures++;
      throw new PrefixCacheError(`prefix snapshot ${hit.id} is no longer cached`);
    }
    let bytes: Uint8Array;
    try {
      bytes = await this.disk.load(e.id);
    } catch (err) {
      this.c.loadFailures++;
      throw err;
    }
    if (this.entries.get(e.id) === e && !e.host && this.pool.put(e.id, bytes)) {
      e.host = true;
      this.c.promotions++;
    }
    return bytes;
  }

  /**
   * Admin flush: drop every snapshot (of one namespace, when given) from both tiers. Resolves
   * when the disk files are gone. Counters are not reset.
   */
  async flush(ns?: string): Promise<{ removed: number }> {
    let removed = 0;
    for (const e of [...this.entries.values()]) {
      if (ns !== undefined && e.ns !== ns) continue;
      this.removeEntry(e);
      removed++;
    }
    if (this.disk !== null) {
      this.disk.clear(ns === undefined ? undefined : (n) => n === ns);
      await this.disk.drain();
    }
    return { removed };
  }

  /** Resolves when queued disk writes and deletions have finished. */
  async drain(): Promise<void> {
    await this.disk?.drain();
  }

  /** Finish disk work and release host memory. The cache is unusable afterwards. */
  async close(): Promise<void> {
    await this.disk?.close();
    this.pool.dispose();
  }

  counters(): PrefixCounters {
    return { ...this.c };
  }

  status(): PrefixCacheStatus {
    let hostEntries = 0;
    let diskEntries = 0;
    for (const e of this.entries.values()) (e.host && hostEntries++, e.disk && diskEntries++);
    return {
      entries: this.entries.size,
      hostEntries,
      diskEntries,
      namespaces: this.tries.size,
      minTokens: this.minTokens,
      host: this.pool.stats(),
      disk: this.disk === null ? { enabled: false } : { enabled: true, path: this.disk.dir, ...this.disk.stats() },
      counters: this.counters(),
    };
  }

  private trie(ns: string): RadixTrie<Entry> {
    let t = this.tries.get(ns);
    if (t === undefined) this.tries.set(ns, (t = new RadixTrie<Entry>()));
    return t;
  }

  private addEntry(id: SnapshotId, ns: string, tokens: TokenSeq): Entry {
    const e: Entry = { id, ns, tokens: Uint32Array.from(tokens), host: false, disk: false };
    this.entries.set(id, e);
    this.trie(ns).insert(e.tokens, e);
    return e;
  }

  private removeEntry(e: Entry): void {
    this.entries.delete(e.id);
    const t = this.tries.get(e.ns);
    if (t !== undefined) {
      t.delete(e.tokens);
      if (t.size === 0) this.tries.delete(e.ns);
    }
    if (e.host) this.pool.delete(e.id);
    if (e.disk) this.disk?.delete(e.id);
    e.host = false;
    e.disk = false;
  }

  private onHostEvict(id: SnapshotId, pages: SnapshotPages): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    e.host = false;
    if (e.disk) return;
    if (this.disk !== null) {
      const r = this.disk.spill(e.ns, e.tokens, concatPages(pages), id);
      if (r === 'queued' || r === 'exists') {
        this.c.spills++;
        e.disk = true;
        return;
      }
      this.c.spillsDropped++;
    }
    this.removeEntry(e);
  }

  private onDiskRemove(id: SnapshotId, _why: DiskRemoveReason): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    e.disk = false;
    if (!e.host) this.removeEntry(e);
  }
}
