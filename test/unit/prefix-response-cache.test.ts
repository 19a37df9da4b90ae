import { expect } from 'chai';
import { isDeterministic, ResponseCache } from '../../src/runtime/prefix/response-cache.js';

describe('prefix ResponseCache', () => {
  it('caches only deterministic requests: greedy, or a fixed integer seed', () => {
    expect(isDeterministic({ temperature: 0 })).to.equal(true);
    expect(isDeterministic({ temperature: 0.8, seed: 42 })).to.equal(true);
    expect(isDeterministic({ temperature: 0.8 })).to.equal(false);
    expect(isDeterministic({ temperature: 0.8, seed: null })).to.equal(false);
    expect(isDeterministic({ temperature: 0.8, seed: 1.5 })).to.equal(false);
    const rc = new ResponseCache<string>({ enabled: true });
    expect(rc.keyFor('m', [1, 2], { temperature: 1 })).to.equal(null);
    expect(rc.stats().uncacheable).to.equal(1);
  });

  it('is off unless enabled', () => {
    const rc = new ResponseCache<string>();
    expect(rc.keyFor('m', [1, 2], { temperature: 0 })).to.equal(null);
    expect(rc.set(null, 'x', 1)).to.equal(false);
  });

  it('keys on namespace, tokens and every sampling parameter, independent of key order', () => {
    const rc = new ResponseCache<string>({ enabled: true });
    const k = rc.keyFor('m', [1, 2, 3], { temperature: 0.7, seed: 5, max_tokens: 16, stop: ['x'] })!;
    expect(rc.keyFor('m', new Uint32Array([1, 2, 3]), { stop: ['x'], max_tokens: 16, seed: 5, temperature: 0.7 })).to.equal(k);
    expect(rc.keyFor('m', [1, 2, 4], { temperature: 0.7, seed: 5, max_tokens: 16, stop: ['x'] })).to.not.equal(k);
    expect(rc.keyFor('m2', [1, 2, 3], { temperature: 0.7, seed: 5, max_tokens: 16, stop: ['x'] })).to.not.equal(k);
    expect(rc.keyFor('m', [1, 2, 3], { temperature: 0.7, seed: 6, max_tokens: 16, stop: ['x'] })).to.not.equal(k);
    expect(rc.keyFor('m', [1, 2, 3], { temperature: 0.7, seed: 5, max_tokens: 17, stop: ['x'] })).to.not.equal(k);
    // Greedy output ignores the seed, so greedy requests share one entry.
    expect(rc.keyFor('m', [1], { temperature: 0, seed: 1 })).to.equal(rc.keyFor('m', [1], { temperature: 0, seed: 2 }));
    rc.set(k, 'answer', 6);
    expect(rc.get(k)).to.equal('answer');
    expect(rc.stats()).to.include({ hits: 1, entries: 1, bytes: 6 });
  });

  it('is a bounded LRU by entries and by bytes', () => {
    const rc = new ResponseCache<string>({ enabled: true, maxEntries: 2, maxBytes: 10 });
    const key = (i: number) => rc.keyFor('m', [i], { temperature: 0 })!;
    rc.set(key(1), 'a', 4);
    rc.set(key(2), 'b', 4);
    rc.get(key(1));
    rc.set(key(3), 'c', 4); // entry bound: evicts 2 (least recent)
    expect([rc.get(key(1)), rc.get(key(2)), rc.get(key(3))]).to.deep.equal(['a', undefined, 'c']);
    rc.set(key(4), 'd', 8); // byte bound: evicts until <= 10 bytes
    expect(rc.stats()).to.include({ entries: 1, bytes: 8 });
    expect(rc.set(key(5), 'huge', 11)).to.equal(false);
  });
});
