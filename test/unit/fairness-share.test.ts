import { expect } from 'chai';
import { Sim, admit, freshRequest, id, makeRequests, makeScheduler, place, queued } from '../helpers/scheduler.js';

/** Share of `tenant` in the processed tokens of `a` and `b`. */
function share(sim: Sim, a: string, b: string): number {
  const x = sim.processed.get(a) ?? 0;
  const y = sim.processed.get(b) ?? 0;
  return x / (x + y);
}

describe('fairness: token-aware sharing between tenants', () => {
  it('serves the tenant with the lowest virtual counter within a priority class, FIFO within a tenant', () => {
    const core = makeScheduler({ engines: [1] });
    const [a0, a1, a2] = makeRequests(3, { tenant: 'a', promptTokens: 10 });
    const [b0, b1] = makeRequests(2, { tenant: 'b', promptTokens: 10 });
    expect(admit(core, a0!)).to.deep.equal({ kind: 'place', engine: { model: 'm', worker: 0 }, id: id('a0'), ref: 'a0' });
    for (const r of [a1!, a2!, b0!, b1!]) expect(admit(core, r)).to.deep.equal(queued());
    // a = 10 (a0's prompt); b arrived while a was active, so it starts at a's 10, not 0.
    expect(core.released(id('a0'), undefined, 5)).to.deep.equal([place(0, 'b0')]); // a 15 > b 10
    expect(core.released(id('b0'))).to.deep.equal([place(0, 'a1')]); // b 20 > a 15
    expect(core.released(id('a1'))).to.deep.equal([place(0, 'b1')]); // a 25 > b 20
    expect(core.released(id('b1'))).to.deep.equal([place(0, 'a2')]);
    expect(core.released(id('a2'))).to.deep.equal([]);
  });

  it('lifts a returning idle tenant to the active minimum so it cannot bank credit', () => {
    const core = makeScheduler({ engines: [1] });
    admit(core, makeRequests(1, { tenant: 'b', prefix: 'early' })[0]!);
    core.released(id('early0'));
    const as = makeRequests(4, { tenant: 'a' });
    const bs = makeRequests(2, { tenant: 'b', prefix: 'b' });
    as.forEach((r) => admit(core, r));
    core.progress(id('a0'), 1000); // a alone: its counter runs to 1000
    bs.forEach((r) => admit(core, r)); // b comes back at 1000, not at the 0 it left with
    expect(core.released(id('a0'))).to.deep.equal([place(0, 'a1')]); // tie at 1000: earlier arrival
    expect(core.released(id('a1'), undefined, 10)).to.deep.equal([place(0, 'b0')]);
    expect(core.released(id('b0'), undefined, 10)).to.deep.equal([place(0, 'a2')]);
    expect(core.released(id('a2'), undefined, 10)).to.deep.equal([place(0, 'b1')]);
    expect(core.released(id('b1'), undefined, 10)).to.deep.equal([place(0, 'a3')]);
  });

  for (const maxQueue of [100_000, 40]) {
    it(`gives two backlogged tenants equal token shares (within 10%) when one sends 10x the load (queue bound ${maxQueue})`, () => {
      // With the large bound the flood sits in the queue and the virtual counters decide; with
      // the small one the flood is turned away at admission and never the light tenant.
      const sim = new Sim(makeScheduler({ engines: [2, 2], maxQueue }));
      for (let step = 0; step < 4000; step++) {
        if (step % 4 === 0) {
          for (let i = 0; i < 10; i++) sim.admit(freshRequest('heavy', { promptTokens: 8 }), 16);
          sim.admit(freshRequest('light', { promptTokens: 8 }), 16);
        }
        sim.step();
      }
      const s = share(sim, 'heavy', 'light');
      expect(s, `heavy share ${s.toFixed(3)}`).to.be.within(0.45, 0.55);
      const generated = sim.core.counters().tokensByTenant;
      const g = generated.get('heavy')! / (generated.get('heavy')! + generated.get('light')!);
      expect(g, `heavy generated share ${g.toFixed(3)}`).to.be.within(0.45, 0.55);
      expect(sim.core.depth('m').queued).to.be.within(1, maxQueue);
    });
  }

  it('shares tokens, not requests: many short requests against few long ones', () => {
    const sim = new Sim(makeScheduler({ engines: [2, 2], maxQueue: 100_000 }));
    for (let step = 0; step < 6000; step++) {
      if (step % 2 === 0) for (let i = 0; i < 5; i++) sim.admit(freshRequest('short', { promptTokens: 4 }), 8);
      if (step % 8 === 0) sim.admit(freshRequest('long', { promptTokens: 32 }), 64);
      sim.step();
    }
    const s = share(sim, 'short', 'long');
    expect(s, `short share ${s.toFixed(3)}`).to.be.within(0.45, 0.55);
  });

  it('makes room in a full queue by evicting the newest request of the tenant holding the most', () => {
    const core = makeScheduler({ engines: [1], maxQueue: 4 });
    const as = makeRequests(6, { tenant: 'a' });
    const bs = makeRequests(3, { tenant: 'b' });
    const [low] = makeRequests(1, { tenant: 'c', priority: -1 });
    expect(admit(core, as[0]!)).to.deep.include({ kind: 'place' });
    for (const r of as.slice(1, 5)) expect(admit(core, r)).to.deep.equal(queued());
    expect(admit(core, as[5]!)).to.deep.equal({ kind: 'reject', reason: 'queue_full' }); // nobody holds more than a
    expect(admit(core, bs[0]!)).to.deep.equal(queued([], ['a4'])); // a 4 vs b 0
    expect(admit(core, bs[1]!)).to.deep.equal(queued([], ['a3'])); // a 3 vs b 1
    expect(admit(core, bs[2]!)).to.deep.equal({ kind: 'reject', reason: 'queue_full' }); // a 2 vs b 2
    expect(admit(core, low!)).to.deep.equal({ kind: 'reject', reason: 'queue_full' }); // cannot evict higher priority
    expect(core.depth('m')).to.deep.equal({ queued: 4, active: 1 });
    const order: string[] = [];
    let next = core.released(id('a0'));
    while (next.length > 0) {
      order.push(next[0]!.ref);
      next = core.released(next[0]!.id, undefined, 10);
    }
    expect(order).to.deep.equal(['a1', 'b0', 'a2', 'b1']);
  });
});
