import { expect } from 'chai';
import { accessLineSampled } from '../../src/log/access-sampling.js';

describe('access-log sampling', () => {
  const ids = Array.from({ length: 20_000 }, (_, i) => `req-${i.toString(36)}-${(i * 7919).toString(16)}`);

  it('writes every error, whatever the rate', () => {
    for (const status of [400, 404, 429, 500, 503]) expect(accessLineSampled({ rate: 0, tenants: {} }, 'x', 'a', status)).to.equal(true);
  });

  it('keeps about the configured share of successes, the same ids every time, per tenant before the overall rate', () => {
    const kept = (rate: number, tenants: Record<string, number> = {}, tenant?: string) => ids.filter((id) => accessLineSampled({ rate, tenants }, id, tenant, 200));
    expect(kept(1)).to.have.length(ids.length);
    expect(kept(0)).to.have.length(0);
    const quarter = kept(0.25);
    expect(quarter.length).to.be.within(0.23 * ids.length, 0.27 * ids.length);
    expect(kept(0.25)).to.deep.equal(quarter);
    // A higher rate keeps a superset: an id in at 25% is in at 50%.
    const half = new Set(kept(0.5));
    for (const id of quarter) expect(half.has(id)).to.equal(true);
    expect(kept(1, { 'team-a': 0 }, 'team-a')).to.have.length(0);
    expect(kept(0, { 'team-a': 1 }, 'team-a')).to.have.length(ids.length);
    expect(kept(0, { 'team-a': 1 }, 'team-b')).to.have.length(0);
    expect(kept(0, { 'team-a': 1 })).to.have.length(0);
  });
});
