import { expect } from 'chai';
import { PagePool, type EvictionPolicy } from '../../src/runtime/prefix/page-pool.js';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

function makePool(o: { cpuPages?: number; pageBytes?: number; eviction?: EvictionPolicy } = {}) {
  const evicted: string[] = [];
  const spilled = new Map<string, number[]>();
  const pool = new PagePool({
    cpuPages: o.cpuPages ?? 3,
    pageBytes: o.pageBytes ?? 16,
    eviction: o.eviction ?? 'lru',
    onEvict: (id, snap) => {
      evicted.push(id);
      spilled.set(id, snap.pages.flatMap((p) => [...p]));
    },
  });
  return { pool, evicted, spilled };
}

describe('prefix PagePool', () => {
  it('splits snapshots into pages, copies once and returns them intact', () => {
    const { pool } = makePool({ cpuPages: 10, pageBytes: 16 });
    const a = bytes(40, 1);
    expect(pool.put('a', a)).to.equal(true);
    a[0] = 99; // the pool holds its own copy
    expect([...pool.get('a')!]).to.deep.equal([...bytes(40, 1)]);
    expect(pool.put('b', [bytes(10, 2), bytes(20, 3)])).to.equal(true); // chunks are concatenated
    expect([...pool.get('b')!]).to.deep.equal([...bytes(10, 2), ...bytes(20, 3)]);
    const lease = pool.acquire('a')!;
    expect(lease.pages.map((p) => p.length)).to.deep.equal([16, 16, 8]);
    lease.release();
    expect(pool.stats()).to.deep.equal({
      pagesTotal: 10, pagesUsed: 5, pagesAllocated: 5, pageBytes: 16, snapshots: 2,
      bytesStored: 70, pinned: 0, evictions: 0,
    });
    pool.delete('a');
    expect(pool.put('c', bytes(48, 4))).to.equal(true); // reuses the three freed pages
    expect(pool.stats().pagesAllocated).to.equal(5);
    expect(pool.get('missing')).to.equal(null);
  });

  it('reserve hands out pages the caller fills, evicting like put; cancel gives them back', () => {
    const { pool, evicted } = makePool({ cpuPages: 4, pageBytes: 16 });
    expect(pool.put('old', bytes(40, 1))).to.equal(true); // 3 pages
    const r = pool.reserve('new', 20)!; // 2 pages: 'old' must go
    expect(evicted).to.deep.equal(['old']);
    expect(r.pages.map((p) => p.length)).to.deep.equal([16, 4]);
    expect(pool.has('new')).to.equal(false); // not visible before commit
    r.pages[0]!.set(bytes(16, 7));
    r.pages[1]!.set(bytes(20, 7).subarray(16));
    expect(r.commit()).to.equal(true);
    expect(r.commit()).to.equal(false); // settles once
    expect([...pool.get('new')!]).to.deep.equal([...bytes(20, 7)]);
    expect(pool.stats()).to.include({ pagesUsed: 2, snapshots: 1, bytesStored: 20 });

    const c = pool.reserve('other', 30)!;
    expect(pool.stats().pagesUsed).to.equal(4);
    c.cancel();
    expect(pool.stats()).to.include({ pagesUsed: 2, snapshots: 1 });
    expect(pool.has('other')).to.equal(false);
    expect(pool.reserve('huge', 16 * 5)).to.equal(null); // larger than the budget
    expect(pool.stats().evictions).to.equal(1);

    const late = pool.reserve('late', 8)!;
    pool.dispose();
    expect(late.commit()).to.equal(false);
  });

  it('lru and clock choose different victims for the same trace', () => {
    const trace = (eviction: EvictionPolicy) => {
      const { pool, evicted } = makePool({ eviction });
      for (const id of ['A', 'B', 'C']) pool.put(id, bytes(16, 0));
      pool.get('A');
      pool.put('D', bytes(16, 0));
      pool.get('C');
      pool.put('E', bytes(16, 0));
      return { evicted, left: pool.ids().sort() };
    };
    // LRU: recency is A,D,C when E arrives, so A goes.
    expect(trace('lru')).to.deep.equal({ evicted: ['B', 'A'], left: ['C', 'D', 'E'] });
    // Clock: the hand rests on C after evicting B; C's bit (set by get) buys a second chance, D has none.
    expect(trace('clock')).to.deep.equal({ evicted: ['B', 'D'], left: ['A', 'C', 'E'] });
  });

  it('never evicts a leased snapshot and keeps leased pages valid after delete', () => {
    for (const eviction of ['lru', 'clock'] as const) {
      const { pool, evicted } = makePool({ eviction, cpuPages: 3 });
      pool.put('a', bytes(16, 1));
      pool.put('b', bytes(16, 2));
      pool.put('c', bytes(16, 3));
      const la = pool.acquire('a')!;
      const lb = pool.acquire('b')!;
      expect(pool.put('d', bytes(16, 4))).to.equal(true);
      expect(evicted).to.deep.equal(['c']);
      const lc = pool.acquire('d')!;
      expect(pool.put('e', bytes(16, 5))).to.equal(false); // everything pinned: refused, nothing evicted
      expect(evicted).to.deep.equal(['c']);
      pool.delete('a');
      expect(pool.has('a')).to.equal(false);
      expect(pool.stats().pagesUsed).to.equal(3); // still leased
      expect([...la.pages[0]!]).to.deep.equal([...bytes(16, 1)]);
      la.release();
      la.release(); // idempotent
      expect(pool.stats().pagesUsed).to.equal(2);
      expect(pool.put('e', bytes(16, 5))).to.equal(true);
      lb.release();
      lc.release();
      expect(pool.stats().pinned).to.equal(0);
    }
  });

  it('never exceeds the page budget and hands victims to onEvict before reuse', () => {
    const { pool, evicted, spilled } = makePool({ cpuPages: 8, pageBytes: 16, eviction: 'clock' });
    const originals = new Map<string, number[]>();
    for (let i = 0; i < 200; i++) {
      const size = 1 + ((i * 37) % 60);
      originals.set(`s${i}`, [...bytes(size, i)]);
      const ok = pool.put(`s${i}`, bytes(size, i));
      expect(ok).to.equal(true);
      if (i % 3 === 0) pool.get(`s${Math.max(0, i - 2)}`);
      const st = pool.stats();
      expect(st.pagesUsed).to.be.at.most(8);
      expect(st.pagesAllocated).to.be.at.most(8);
    }
    expect(pool.put('huge', bytes(16 * 8 + 1, 0))).to.equal(false);
    expect(pool.stats().evictions).to.equal(evicted.length);
    expect(evicted.length).to.be.above(100);
    for (const id of evicted) expect(spilled.get(id), id).to.deep.equal(originals.get(id));
  });

  it('replacing an id frees the old pages without counting an eviction; dispose guards use', () => {
    const { pool, evicted } = makePool({ cpuPages: 2 });
    pool.put('a', bytes(32, 1));
    expect(pool.put('a', bytes(20, 2))).to.equal(true);
    expect(evicted).to.deep.equal([]);
    expect(pool.stats()).to.include({ pagesUsed: 2, snapshots: 1, bytesStored: 20, evictions: 0 });
    pool.dispose();
    expect(() => pool.put('b', bytes(1, 0))).to.throw('PagePool is disposed');
  });

  it('allocateAhead primes pages within the budget onto the free list, and snapshots reuse them', () => {
    const { pool } = makePool({ cpuPages: 3 });
    const primed: Uint8Array[] = [];
    expect(pool.allocateAhead(2, (pages) => pages.forEach((p) => (p.fill(9), primed.push(p))))).to.equal(2);
    expect(pool.unallocated).to.equal(1);
    expect(primed[0]!.buffer, 'one backing store per call').to.equal(primed[1]!.buffer);
    expect(pool.stats()).to.include({ pagesAllocated: 2, pagesUsed: 0 });
    // Never beyond the budget; 0 once it is all allocated, without calling `prime`.
    expect(pool.allocateAhead(5, (pages) => primed.push(...pages))).to.equal(1);
    expect(pool.allocateAhead(5, () => expect.fail('nothing left to prime'))).to.equal(0);
    expect(pool.stats()).to.include({ pagesAllocated: 3 });
    // A snapshot takes primed pages (no new allocation) and reads back its own bytes, not the primer's.
    const r = pool.reserve('a', 32)!;
    expect(primed).to.include(r.pages[0]!);
    expect(primed).to.include(r.pages[1]!);
    r.pages[0]!.set(bytes(16, 4));
    r.pages[1]!.set(bytes(16, 5));
    expect(r.commit()).to.equal(true);
    expect([...pool.get('a')!]).to.deep.equal([...bytes(16, 4), ...bytes(16, 5)]);
    expect(pool.stats()).to.include({ pagesAllocated: 3, pagesUsed: 2 });
  });

  it('allocateAhead leaves the budget as it was when priming fails', () => {
    const { pool } = makePool({ cpuPages: 3 });
    expect(() => pool.allocateAhead(2, () => { throw new Error('no tmpfs'); })).to.throw('no tmpfs');
    expect(pool.unallocated).to.equal(3);
    expect(pool.put('a', bytes(48, 1))).to.equal(true);
  });
});
