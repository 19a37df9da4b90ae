import { expect } from 'chai';
import { median, percentile, summarize } from '../../bench/stats.js';

describe('bench/stats', () => {
  it('uses nearest rank (always a measured value)', () => {
    const v = [15, 20, 35, 40, 50];
    expect(percentile(v, 5)).to.equal(15);
    expect(percentile(v, 30)).to.equal(20);
    expect(percentile(v, 40)).to.equal(20);
    expect(percentile(v, 50)).to.equal(35);
    expect(percentile(v, 95)).to.equal(50);
    expect(percentile(v, 100)).to.equal(50);
  });

  it('does not depend on input order and does not mutate it', () => {
    const v = [9, 1, 5, 3, 7, 2, 8, 4, 6, 10];
    const copy = [...v];
    expect(percentile(v, 50)).to.equal(5);
    expect(percentile(v, 95)).to.equal(10);
    expect(percentile(v, 10)).to.equal(1);
    expect(v).to.deep.equal(copy);
  });

  it('handles one value, empty lists and bad p', () => {
    expect(percentile([42], 1)).to.equal(42);
    expect(percentile([42], 99)).to.equal(42);
    expect(percentile([], 50)).to.be.NaN;
    expect(() => percentile([1], 0)).to.throw(RangeError);
    expect(() => percentile([1], 101)).to.throw(RangeError);
  });

  it('summarizes p50/p95/p99/mean and takes the lower middle as median', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(summarize(v)).to.deep.equal({ n: 100, p50: 50, p95: 95, p99: 99, mean: 50.5 });
    expect(median([4, 1, 3, 2])).to.equal(2);
  });
});
