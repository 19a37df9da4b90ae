import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskTierError } from '../../src/runtime/prefix/disk-tier.js';
import { PrefixCache, type PrefixCacheOptions, type PrefixHit } from '../../src/runtime/prefix/prefix-cache.js';
import { prefixNamespace } from '../../src/runtime/prefix/snapshot-key.js';

const NS = prefixNamespace({ model: 'tiny', modelFingerprint: 'sz=1|mt=2', adapter: null, layout: 'seq=4' });
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);
const toks = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('prefix PrefixCache', () => {
  let dir: string;
  const caches: PrefixCache[] = [];
  async function makeCache(o: Partial<PrefixCacheOptions> & { withDisk?: boolean } = {}): Promise<PrefixCache> {
    const { withDisk = true, ...rest } = o;
    const c = await PrefixCache.open({
      cpuPages: 4, pageBytes: 1024, minTokens: 4, eviction: 'lru',
      disk: withDisk ? { path: dir, workers: 1, queueDepth: 4 } : null,
      ...rest,
    });
    caches.push(c);
    return c;
  }
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ifx-prefix-'));
  });
  afterEach(async () => {
    for (const c of caches.splice(0)) await c.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('host hit, partial hit and miss are counted exactly once each', async () => {
    const cache = await makeCache();
    expect(cache.store(NS, toks(3), bytes(10, 0))).to.equal('too_short');
    expect(cache.store(NS, toks(8), bytes(1500, 1))).to.equal('host');
    expect(cache.store(NS, toks(8), bytes(1500, 1))).to.equal('exists');

    const hit = cache.lookup(NS, toks(12)) as PrefixHit;
    expect(hit).to.deep.include({ kind: 'host', ns: NS, length: 8, matched: 8 });
    expect([...(await cache.load(hit))]).to.deep.equal([...bytes(1500, 1)]);
    const lease = cache.acquireHost(hit)!;
    expect(lease.byteLength).to.equal(1500);
    lease.release();

    // Shares 6 tokens with the stored key, but no stored key is a prefix of it.
    expect(cache.lookup(NS, [...toks(6), 99, 100])).to.deep.equal({ kind: 'miss', partialLength: 6 });
    expect(cache.lookup(NS, [...toks(2), 99, 100, 101])).to.deep.equal({ kind: 'miss', partialLength: 0 });
    expect(cache.lookup('other-ns', toks(12))).to.deep.equal({ kind: 'miss', partialLength: 0 });
    expect(cache.peek(NS, toks(12)).kind).to.equal('host'); // not counted
    expect(cache.counters()).to.include({
      lookups: 4, hits: 1, hostHits: 1, diskHits: 0, partialHits: 1, misses: 2, matchedTokens: 8, partialTokens: 6,
    });
  });

  it('storeWith fills host pages in place; a failed fill stores nothing; too big for host goes through one buffer', async () => {
    const cache = await makeCache({ withDisk: false });
    const data = bytes(2500, 3);
    const seen: number[] = [];
    const fill = async (pages: readonly Uint8Array[]) => {
      let off = 0;
      for (const p of pages) (seen.push(p.length), p.set(data.subarray(off, off + p.length)), (off += p.length));
    };
    expect(await cache.storeWith(NS, toks(8), data.length, fill)).to.equal('host');
    expect(seen).to.deep.equal([1024, 1024, 452]); // straight into the pool's pages
    const hit = cache.lookup(NS, toks(10)) as PrefixHit;
    expect(hit.kind).to.equal('host');
    expect([...(await cache.load(hit))]).to.deep.equal([...data]);
    expect(await cache.storeWith(NS, toks(8), data.length, fill)).to.equal('exists');

    const failed = await cache.storeWith(NS, toks(8, 100), 1000, () => Promise.reject(new Error('short file'))).then(
      () => 'stored',
      (err: Error) => err.message,
    );
    expect(failed).to.equal('short file');
    expect(cache.lookup(NS, toks(8, 100)).kind).to.equal('miss');
    expect(cache.status().host.pagesUsed).to.equal(3); // the failed fill's page went back

    seen.length = 0;
    expect(await cache.storeWith(NS, toks(8, 200), 5000, fill)).to.equal('no_space'); // 5 pages > 4, no disk tier
    expect(seen).to.deep.equal([5000]);
  });

  it('host eviction spills to disk; a disk hit loads, verifies and is promoted back', async () => {
    const cache = await makeCache();
    cache.store(NS, toks(8, 0), bytes(1500, 1)); // 2 pages each; the pool holds 4
    cache.store(NS, toks(8, 100), bytes(1500, 2));
    cache.store(NS, toks(8, 200), bytes(1500, 3)); // evicts toks(8,0) -> disk
    await cache.drain();
    const st = cache.status();
    expect(st).to.deep.include({ entries: 3, hostEntries: 2, diskEntries: 1 });
    expect(st.host).to.include({ pagesUsed: 4, pagesTotal: 4, evictions: 1 });
    expect(st.disk).to.include({ enabled: true, files: 1, bytes: 1500 });

    const hit = cache.lookup(NS, toks(20, 0)) as PrefixHit;
    expect(hit).to.deep.include({ kind: 'disk', length: 8 });
    expect([...(await cache.load(hit))]).to.deep.equal([...bytes(1500, 1)]);
    expect(cache.peek(NS, toks(20, 0)).kind).to.equal('host'); // promoted
    expect(cache.counters()).to.include({ diskHits: 1, promotions: 1, spills: 2 }); // promotion evicted toks(8,100)
    await cache.drain();
    expect(cache.status().disk).to.include({ files: 2 });
  });

  it('warm after a restart: a new instance serves disk hits from the recovered index', async () => {
    const c1 = await makeCache({ cpuPages: 2 });
    c1.store(NS, toks(16, 0), bytes(2000, 7));
    c1.store(NS, toks(16, 50), bytes(2000, 8)); // evicts the first to disk
    await c1.close();
    caches.splice(caches.indexOf(c1), 1);

    const c2 = await makeCache({ cpuPages: 2 });
    expect(c2.status()).to.deep.include({ entries: 1, diskEntries: 1, hostEntries: 0 });
    const hit = c2.lookup(NS, toks(40, 0)) as PrefixHit;
    expect(hit).to.deep.include({ kind: 'disk', length: 16 });
    expect([...(await c2.load(hit))]).to.deep.equal([...bytes(2000, 7)]);
  });

  it('a corrupted disk snapshot is dropped and the prefix becomes a miss', async () => {
    const cache = await makeCache({ cpuPages: 2 });
    cache.store(NS, toks(8, 0), bytes(2000, 1));
    cache.store(NS, toks(8, 100), bytes(2000, 2));
    await cache.drain();
    const idx = (await readFile(join(dir, 'index.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { file: string });
    const f = join(dir, idx[idx.length - 1]!.file);
    const buf = await readFile(f);
    buf[0] ^= 1;
    await writeFile(f, buf);
    const hit = cache.lookup(NS, toks(10, 0)) as PrefixHit;
    expect(hit.kind).to.equal('disk');
    const err = await cache.load(hit).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(DiskTierError);
    expect(cache.lookup(NS, toks(10, 0)).kind).to.equal('miss');
    expect(cache.counters().loadFailures).to.equal(1);
  });

  it('host only: eviction forgets the prefix; flush drops a namespace', async () => {
    const cache = await makeCache({ withDisk: false, cpuPages: 2 });
    cache.store(NS, toks(8, 0), bytes(2000, 1));
    cache.store('ns2', toks(8, 0), bytes(2000, 2));
    expect(cache.lookup(NS, toks(8, 0)).kind).to.equal('miss');
    expect(cache.lookup('ns2', toks(8, 0)).kind).to.equal('host');
    expect(cache.store(NS, toks(8, 9), bytes(5000, 1))).to.equal('no_space'); // larger than the pool
    expect(await cache.flush('ns2')).to.deep.equal({ removed: 1 });
    expect(cache.status()).to.deep.include({ entries: 0, namespaces: 0, disk: { enabled: false } });
    expect(cache.status().host.pagesUsed).to.equal(0);
  });
});
