import { expect } from 'chai';
import { Sim, admit, freshRequest, id, makeRequests, makeScheduler, place, queued, suspend } from '../helpers/scheduler.js';

describe('fairness: timeslices and live configuration', () => {
  it('yields a request past its timeslice to an equal-priority waiter, then takes turns', () => {
    const core = makeScheduler({ engines: [1], fairness: { maxTimesliceTokens: 4 } });
    const [a0, a1] = makeRequests(2, { tenant: 'a' });
    admit(core, a0!);
    expect(core.progress(id('a0'), 4)).to.deep.equal([]); // alone: nothing to yield to
    expect(admit(core, a1!)).to.deep.equal(queued());
    expect(core.progress(id('a0'), 0)).to.deep.equal([]); // at the slice, not past it
    expect(core.progress(id('a0'), 1)).to.deep.equal([suspend(0, 'a0', 'yield')]);
    expect(core.progress(id('a0'), 1)).to.deep.equal([]); // already being suspended
    // A yielded request goes behind its tenant's waiters, or it would take its sequence right back.
    expect(core.suspended(id('a0'), 'a0')).to.deep.equal({ placements: [place(0, 'a1')], drop: undefined });
    expect(core.progress(id('a1'), 5)).to.deep.equal([suspend(0, 'a1', 'yield')]);
    expect(core.suspended(id('a1'), 'a1')).to.deep.equal({ placements: [place(0, 'a0', 0)], drop: undefined });
    expect(core.counters()).to.deep.include({ preemptions: 0, yields: 2, resumes: 1 });
  });

  it('does not yield to lower-priority waiters', () => {
    const core = makeScheduler({ engines: [1], fairness: { maxTimesliceTokens: 4 } });
    admit(core, makeRequests(1, { priority: 1, prefix: 'p' })[0]!);
    admit(core, makeRequests(1, { priority: 0, prefix: 'l' })[0]!);
    expect(core.progress(id('p0'), 100)).to.deep.equal([]);
  });

  it('round-robins long generations of one tenant in slices', () => {
    const sim = new Sim(makeScheduler({ engines: [1], fairness: { maxTimesliceTokens: 2 } }));
    for (const r of makeRequests(3, { tenant: 'a' })) sim.admit(r, 4);
    for (let i = 0; i < 12; i++) sim.step();
    expect(sim.events).to.deep.equal([
      'place a0@0', 'yield a0', 'place a1@0', 'yield a1', 'place a2@0', 'yield a2',
      'resume a0@0', 'done a0', 'resume a1@0', 'done a1', 'resume a2@0', 'done a2',
    ]);
  });

  it('applies configuration changes live and returns the suspensions they call for', () => {
    const core = makeScheduler({ engines: [2] });
    makeRequests(2, { prefix: 'l' }).forEach((r) => admit(core, r));
    core.progress(id('l0'), 7);
    core.progress(id('l1'), 9);
    expect(admit(core, makeRequests(1, { priority: 6, prefix: 'h' })[0]!)).to.deep.equal(queued()); // preemption off
    expect(core.setFairness({ enablePreemption: true, highPriorityThreshold: 7 })).to.deep.equal([]); // 6 is not high now
    expect(core.setFairness({ highPriorityThreshold: 6 })).to.deep.equal([suspend(0, 'l1', 'preempt')]);
    expect(core.fairness()).to.deep.equal({ enablePreemption: true, highPriorityThreshold: 6, maxTimesliceTokens: 0 });
    // A timeslice switched on for an equal-priority waiter: l0 is past it and not yet suspending.
    admit(core, makeRequests(1, { prefix: 'w' })[0]!);
    expect(core.setFairness({ maxTimesliceTokens: 5 })).to.deep.equal([suspend(0, 'l0', 'yield')]);
    expect(() => core.setFairness({ maxTimesliceTokens: -1 })).to.throw(RangeError);
    expect(core.fairness().maxTimesliceTokens).to.equal(5);
  });

  it('counts generated tokens per priority and per tenant', () => {
    const sim = new Sim(makeScheduler({ engines: [2] }));
    sim.admit(freshRequest('a', { priority: 0 }), 3);
    sim.admit(freshRequest('b', { priority: 9 }), 5);
    for (let i = 0; i < 5; i++) sim.step();
    const c = sim.core.counters();
    expect(c.tokensByPriority).to.deep.equal(new Map([[0, 3], [9, 5]]));
    expect(c.tokensByTenant).to.deep.equal(new Map([['a', 3], ['b', 5]]));
  });
});
