import { expect } from 'chai';
import { RadixTrie } from '../../src/runtime/prefix/radix-trie.js';

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('prefix RadixTrie', () => {
  it('inserts, splits runs and finds exact keys', () => {
    const t = new RadixTrie<string>();
    expect(t.insert([1, 2, 3, 4], 'a')).to.equal(true);
    expect(t.nodeCount()).to.equal(1); // one compressed edge
    expect(t.insert([1, 2, 9], 'b')).to.equal(true); // splits [1,2,3,4] at 2
    expect(t.nodeCount()).to.equal(3);
    expect(t.insert([1, 2], 'c')).to.equal(true); // value on the split node, no new node
    expect(t.nodeCount()).to.equal(3);
    expect(t.insert(new Uint32Array([1, 2, 3, 4]), 'a2')).to.equal(false); // replace
    expect(t.size).to.equal(3);
    expect(t.get([1, 2, 3, 4])).to.equal('a2');
    expect(t.get([1, 2, 3])).to.equal(undefined);
    expect(t.has([1, 2])).to.equal(true);
    expect([...t.entries()].map(([k, v]) => [[...k], v])).to.deep.equal([
      [[1, 2], 'c'],
      [[1, 2, 3, 4], 'a2'],
      [[1, 2, 9], 'b'],
    ]);
  });

  it('longestPrefix returns the deepest stored key that prefixes the query; matchLength counts valueless sharing', () => {
    const t = new RadixTrie<string>();
    t.insert([1, 2, 3, 4, 5, 6], 'long');
    t.insert([1, 2, 3], 'short');
    expect(t.longestPrefix([1, 2, 3, 4, 5, 6, 7])).to.deep.equal({ value: 'long', length: 6 });
    expect(t.longestPrefix([1, 2, 3, 4, 9])).to.deep.equal({ value: 'short', length: 3 });
    expect(t.longestPrefix([1, 2])).to.equal(null);
    expect(t.longestPrefix([7])).to.equal(null);
    expect(t.matchLength([1, 2, 3, 4, 9])).to.equal(4); // shares 4 with 'long', inside a run
    expect(t.matchLength([1, 2])).to.equal(2);
    expect(t.matchLength([8, 1])).to.equal(0);
    expect(t.match([1, 2, 3, 4, 5, 0])).to.deep.equal({ value: 'short', length: 3, found: true, matched: 5 });
    expect(t.match([1, 2, 3, 4, 5, 6, 0])).to.deep.equal({ value: 'long', length: 6, found: true, matched: 6 });
  });

  it('delete prunes and re-merges runs', () => {
    const t = new RadixTrie<number>();
    t.insert([1, 2, 3, 4], 1);
    t.insert([1, 2, 9, 9], 2);
    t.insert([1, 2], 3);
    expect(t.nodeCount()).to.equal(3);
    expect(t.delete([1, 2, 3])).to.equal(false); // not a stored key
    expect(t.delete([1, 2, 9, 9])).to.equal(true);
    expect(t.nodeCount()).to.equal(2); // [1,2] keeps its value, so no merge
    expect(t.delete([1, 2])).to.equal(true);
    expect(t.nodeCount()).to.equal(1); // merged back into one [1,2,3,4] edge
    expect(t.get([1, 2, 3, 4])).to.equal(1);
    expect(t.matchLength([1, 2, 3, 7])).to.equal(3);
    expect(t.delete([1, 2, 3, 4])).to.equal(true);
    expect(t.size).to.equal(0);
    expect(t.nodeCount()).to.equal(0);
    expect(t.delete([1, 2, 3, 4])).to.equal(false);
  });

  it('handles 100k-token keys with one node per run, in bounded time', () => {
    const t = new RadixTrie<string>();
    const n = 100_000;
    const base = Uint32Array.from(range(0, n));
    const started = performance.now();
    t.insert(base, 'base');
    // 50 branches diverging near the end of the long run, and 50 extensions.
    for (let b = 0; b < 50; b++) {
      const k = base.slice();
      k[n - 100 + b] = 1_000_000 + b;
      t.insert(k, `branch${b}`);
      const ext = new Uint32Array(n + 10);
      ext.set(base);
      ext.fill(2_000_000 + b, n);
      t.insert(ext, `ext${b}`);
    }
    for (let q = 0; q < 200; q++) {
      expect(t.longestPrefix(base)!.length).to.equal(n);
    }
    const q = base.slice();
    q[n - 1] = 7;
    expect(t.longestPrefix(q)).to.equal(null);
    expect(t.matchLength(q)).to.equal(n - 1);
    const elapsed = performance.now() - started;
    expect(t.size).to.equal(101);
    expect(t.nodeCount()).to.be.below(250); // no per-token nodes
    expect(elapsed).to.be.below(2000);
  });
});
