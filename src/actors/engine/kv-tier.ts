/**
 * The engine worker's second and third KV tiers. A sequence's KV is the first tier: a finished
 * request leaves its prefix there for the next one (see core.ts). When a sequence holding a
 * worthwhile prefix is about to be overwritten, its state is saved into the prefix cache (host
 * page pool, spilling to disk); a request whose prompt starts with a cached prefix longer than
 * what any free sequence holds gets it loaded back instead of prefilled.
 *
 * llama.cpp saves and loads sequence state only through files, so the bytes pass through tmpfs
 * (`/dev/shm`): memory, not disk. Everything here runs between engine steps, never while a batch
 * is decoding on the same context.
 */
import { componentLog } from '../../log/logger.js';
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BatchContext } from '../../runtime/llama/batch-adapter.js';
import { PrefixCache, type PrefixCacheStatus, type PrefixHit } from '../../runtime/prefix/prefix-cache.js';
import { prefixNamespace, type NamespaceParts } from '../../runtime/prefix/snapshot-key.js';

export interface KvTierOptions {
  model: string;
  modelPath: string;
  worker: number;
  sequences: number;
  contextSize: number;
  /** Flash attention stores V untransposed, and llama.cpp refuses state saved the other way. */
  flashAttention: 'auto' | 'on' | 'off';
  /** Layers on Metal (null = CPU): part of the disk namespace, as state written under one device setup is not read under another. */
  metalLayers: number | 'max' | null;
  cpuPages: number;
  eviction: 'lru' | 'clock';
  /** Disk tier directory (this worker gets a subdirectory), or '' for host only. */
  diskPath: string;
  diskWorkers: number;
  diskQueueDepth: number;
  /** Where state files pass through (tmpfs). */
  stateDir: string;
}

/** A cached prefix must beat what the sequence already holds by this much to be worth a load. */
const MIN_GAIN_TOKENS = 16;

export class KvTier {
  private constructor(
    private readonly cache: PrefixCache,
    private readonly parts: NamespaceParts,
    private readonly batch: BatchContext,
    private readonly opts: KvTierOptions,
  ) {
    this.ns = prefixNamespace(parts);
  }

  /** Namespace of the snapshots saved and looked up now: the model, layout and current adapter. */
  private ns: string;
  /** `primeHostPages`' source file once written; false once priming stopped (failed, or closed). */
  private primer: string | false | null = null;

  /**
   * The context now runs LoRA adapter `key` (null = base): from now on snapshots are saved and
   * found under its own namespace, so a prefix computed under one adapter never loads under another.
   */
  setAdapter(key: string | null): void {
    this.ns = prefixNamespace({ ...this.parts, adapter: key });
  }

  static async open(batch: BatchContext, opts: KvTierOptions): Promise<KvTier> {
    const st = await stat(opts.modelPath);
    // Disk entries outlive the process: the namespace changes whenever the weights file does,
    // and saved state only loads into a context with the same sequence count and V layout.
    const parts: NamespaceParts = {
      model: opts.model,
      modelFingerprint: `${st.size}-${Math.floor(st.mtimeMs)}`,
      adapter: null,
      layout: `seq=${opts.sequences};ctx=${opts.contextSize};fa=${opts.flashAttention}${opts.metalLayers === null ? '' : `;metal=${opts.metalLayers}`}`,
    };
    const cache = await PrefixCache.open({
      cpuPages: opts.cpuPages,
      eviction: opts.eviction,
      disk:
        opts.diskPath === ''
          ? null
          : { path: join(opts.diskPath, `${safe(opts.model)}-w${opts.worker}`), workers: opts.diskWorkers, queueDepth: opts.diskQueueDepth },
    });
    return new KvTier(cache, parts, batch, opts);
  }

  get minTokens(): number {
    return this.cache.status().minTokens;
  }

  /**
   * Save what `seq` holds before it is overwritten, when it is long enough and not cached yet.
   * Failures only lose a cache entry.
   */
  async keep(seq: number, tokens: readonly number[], salt: string): Promise<void> {
    if (tokens.length < this.minTokens || this.holds(tokens, salt)) return;
    const file = this.tempFile();
    try {
      await this.batch.saveSequence(seq, Uint32Array.from(tokens), file);
      // Straight from the file into host pages: no buffer of the whole state (megabytes of
      // fresh memory, page-faulted in on every save) between them.
      const fh = await open(file, 'r');
      try {
        const { size } = await fh.stat();
        await this.cache.storeWith(this.nsFor(salt), tokens, size, (pages) => readInto(fh, pages));
      } finally {
        await fh.close();
      }
    } catch (err) {
      componentLog('engine').warn(`prefix snapshot failed (${String(err)})`);
    } finally {
      void unlink(file).catch(() => undefined);
    }
  }

  /**
   * Allocates up to `maxPages` host pages ahead of their first snapshot (the worker calls this
   * while idle, until the budget is allocated) and writes each once the way a snapshot will: a
   * read from tmpfs. Measured on this project's 2-core VM, 3 MB read from tmpfs into fresh pages
   * took 9-10 ms, into pages written once from JS 4.5 ms, into pages a read had filled before
   * 0.3-0.5 ms; without this, that cost falls on the step that saves a prefix (every stream of
   * the worker waits), for the first 128 MiB of snapshots of a server's life. Returns how many
   * pages it added (0 once all are allocated, or when the host tier is off).
   */
  primeHostPages(maxPages: number): number {
    if (this.primer === false || this.cache.hostPagesUnallocated === 0) return 0;
    try {
      const added = this.cache.allocateHostAhead(maxPages, (pages) => {
        const fd = openSync(this.primerFile(pages[0]!.length), 'r');
        try {
          for (const page of pages) readSync(fd, page, 0, page.length, 0);
        } finally {
          closeSync(fd);
        }
      });
      if (this.cache.hostPagesUnallocated === 0) {
        this.dropPrimer();
        this.primer = false;
      }
      return added;
    } catch (err) {
      // Only a cost: pages are then allocated when snapshots first need them.
      componentLog('engine').warn(`host cache pages not primed (${String(err)}); they are allocated on first use`);
      this.dropPrimer();
      this.primer = false;
      return 0;
    }
  }

  /** A tmpfs file of one page of zeros for `primeHostPages` to read; written once. */
  private primerFile(pageBytes: number): string {
    if (typeof this.primer !== 'string') {
      // Unique per tier: the workers of several models share a pid and worker numbers.
      const file = this.tempFile();
      writeFileSync(file, new Uint8Array(pageBytes));
      this.primer = file;
    }
    return this.primer;
  }

  private dropPrimer(): void {
    if (typeof this.primer === 'string') rmSync(this.primer, { force: true });
  }

  /**
   * The namespace of snapshots computed for requests of cache salt `salt`: the model, layout and
   * adapter's, and for a non-empty salt a part of its own (a digest: salts may hold tenant names).
   */
  private nsFor(salt: string): string {
    return salt === '' ? this.ns : `${this.ns}#salt:${createHash('sha256').update(salt).digest('hex').slice(0, 32)}`;
  }

  /** Whether the cache already holds the state of exactly these tokens. */
  holds(tokens: readonly number[], salt: string): boolean {
    const known = this.cache.peek(this.nsFor(salt), tokens);
    return known.kind !== 'miss' && known.length === tokens.length;
  }

  /** Prompt tokens the tiers could give `tokens` now (0 if none); not counted as a lookup. */
  cachedLength(tokens: readonly number[], salt: string): number {
    const r = this.cache.peek(this.nsFor(salt), tokens);
    return r.kind === 'miss' ? 0 : r.length;
  }

  /**
   * The longest cached prefix of `tokens`, when it beats the `have` tokens the chosen sequence
   * already holds. Counts a hit, partial hit or miss.
   */
  find(tokens: readonly number[], have: number, salt: string): PrefixHit | null {
    const r = this.cache.lookup(this.nsFor(salt), tokens);
    if (r.kind === 'miss') return null;
    return r.length >= have + MIN_GAIN_TOKENS ? r : null;
  }

  /** Load a cached prefix into `seq` (replacing its cells). Returns the tokens now in its KV. */
  async load(seq: number, hit: PrefixHit): Promise<number> {
    const file = this.tempFile();
    try {
      const lease = hit.kind === 'host' ? this.cache.acquireHost(hit) : null;
      if (lease) {
        const fh = await open(file, 'w');
        try {
          await fh.writev(lease.pages as Uint8Array[]);
        } finally {
          lease.release();
          await fh.close();
        }
      } else {
        const fh = await open(file, 'w');
        try {
          await fh.write(await this.cache.load(hit));
        } finally {
          await fh.close();
        }
      }
      this.batch.clearSequence(seq);
      const restored = await this.batch.loadSequence(seq, file, this.opts.contextSize);
      return restored.length;
    } finally {
      void unlink(file).catch(() => undefined);
    }
  }

  status(): PrefixCacheStatus {
    return this.cache.status();
  }

  flush(): Promise<{ removed: number }> {
    return this.cache.flush();
  }

  close(): Promise<void> {
    this.dropPrimer();
    this.primer = false;
    return this.cache.close();
  }

  private tempFile(): string {
    return join(this.opts.stateDir, `ifx-${process.pid}-${this.opts.worker}-${randomUUID()}.kvcache`);
  }
}

/** Fills `pages` from the start of the file, in order; a file shorter than them is an error. */
async function readInto(fh: FileHandle, pages: readonly Uint8Array[]): Promise<void> {
  // One readv normally fills them all (tmpfs); a short read continues page by page.
  let position = (await fh.readv(pages, 0)).bytesRead;
  let start = 0;
  for (const page of pages) {
    const end = start + page.length;
    while (position < end) {
      const { bytesRead } = await fh.read(page, position - start, end - position, position);
      if (bytesRead === 0) throw new Error(`state file ended at ${position} bytes`);
      position += bytesRead;
    }
    start = end;
  }
}

function safe(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}
