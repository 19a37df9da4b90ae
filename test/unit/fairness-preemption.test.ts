import { expect } from 'chai';
import { admit, id, makeRequests, makeScheduler, place, queued, suspend } from '../helpers/scheduler.js';

const preempting = { enablePreemption: true, highPriorityThreshold: 5 };

function drainOrder(core: ReturnType<typeof makeScheduler>, first: string): string[] {
  const order: string[] = [];
  let next = core.released(id(first));
  while (next.length > 0) {
    order.push(next[0]!.resume ? `${next[0]!.ref}(resume)` : next[0]!.ref);
    next = core.released(next[0]!.id);
  }
  return order;
}

describe('fairness: priority and preemption', () => {
  it('serves higher priority first and still serves low priority once no higher work waits', () => {
    const core = makeScheduler({ engines: [1], fairness: preempting });
    const [run] = makeRequests(1, { tenant: 'x', prefix: 'run' });
    const lows = makeRequests(2, { tenant: 'x', prefix: 'low' });
    const [mid] = makeRequests(1, { tenant: 'x', priority: 3, prefix: 'mid' });
    admit(core, run!);
    // Below the threshold: queued ahead of the lows, but nobody is preempted.
    expect(admit(core, lows[0]!)).to.deep.equal(queued());
    expect(admit(core, mid!)).to.deep.equal(queued());
    expect(admit(core, lows[1]!)).to.deep.equal(queued());
    expect(drainOrder(core, 'run0')).to.deep.equal(['mid0', 'low0', 'low1']);
    expect(core.counters().preemptions).to.equal(0);
  });

  it('leaves running requests alone when preemption is off', () => {
    const core = makeScheduler({ engines: [1] });
    admit(core, makeRequests(1, { prefix: 'l' })[0]!);
    expect(admit(core, makeRequests(1, { priority: 9, prefix: 'h' })[0]!)).to.deep.equal(queued());
    expect(core.released(id('l0'))).to.deep.equal([place(0, 'h0')]);
  });

  it('preempts the lowest priority, then the longest-running victim, and resumes it on any worker of the model', () => {
    const core = makeScheduler({ engines: [2, 1], fairness: preempting });
    const [p1] = makeRequests(1, { priority: 1, prefix: 'p' });
    const qs = makeRequests(2, { priority: 0, prefix: 'q' });
    const hs = makeRequests(4, { priority: 9, prefix: 'h' });
    expect(admit(core, p1!)).to.deep.include({ kind: 'place', engine: { model: 'm', worker: 0 } });
    expect(admit(core, qs[0]!)).to.deep.include({ kind: 'place', engine: { model: 'm', worker: 1 } });
    expect(admit(core, qs[1]!)).to.deep.include({ kind: 'place', engine: { model: 'm', worker: 0 } });
    expect(core.progress(id('q0'), 10)).to.deep.equal([]);
    expect(core.progress(id('q1'), 20)).to.deep.equal([]);
    expect(core.progress(id('p0'), 50)).to.deep.equal([]);

    expect(admit(core, hs[0]!)).to.deep.equal(queued([suspend(0, 'q1', 'preempt')])); // priority 0, most tokens
    expect(admit(core, hs[1]!)).to.deep.equal(queued([suspend(1, 'q0', 'preempt')])); // the other priority 0
    expect(admit(core, hs[2]!)).to.deep.equal(queued([suspend(0, 'p0', 'preempt')])); // then priority 1
    expect(admit(core, hs[3]!)).to.deep.equal(queued()); // nothing of lower priority left to suspend

    // A sequence is reused only once the engine confirms the suspension.
    expect(core.depth('m')).to.deep.equal({ queued: 4, active: 3 });
    expect(core.suspended(id('q1'), 'q1*', 2)).to.deep.equal({ placements: [place(0, 'h0')], drop: undefined });
    expect(core.suspended(id('q0'), 'q0*')).to.deep.equal({ placements: [place(1, 'h1')], drop: undefined });
    expect(core.released(id('h0'))).to.deep.equal([place(0, 'h2')]); // p0 still holds its sequence on worker 0
    expect(core.suspended(id('p0'), 'p0*')).to.deep.equal({ placements: [place(0, 'h3')], drop: undefined });
    // Resumes carry the worker the state was saved on, and land wherever a sequence frees.
    expect(core.released(id('h1'))).to.deep.equal([{ ...place(1, 'p0', 0), ref: 'p0*' }]);
    expect(core.released(id('h2'))).to.deep.equal([{ ...place(0, 'q0', 1), ref: 'q0*' }]); // q0 arrived before q1
    expect(core.released(id('h3'))).to.deep.equal([{ ...place(0, 'q1', 0), ref: 'q1*' }]);

    const c = core.counters();
    expect(c).to.deep.equal({ preemptions: 3, yields: 0, migrations: 0, resumes: 3, tokensByPriority: new Map([[0, 32], [1, 50]]), tokensByTenant: new Map([['t', 82]]) });
  });

  it('returns a preempted request to its original place in its priority class', () => {
    const core = makeScheduler({ engines: [1], fairness: preempting, maxQueue: 3 });
    const ls = makeRequests(3, { prefix: 'l' });
    ls.forEach((r) => admit(core, r));
    expect(admit(core, makeRequests(1, { priority: 9, prefix: 'h' })[0]!)).to.deep.equal(queued([suspend(0, 'l0', 'preempt')]));
    expect(admit(core, makeRequests(1, { prefix: 'late' })[0]!)).to.deep.equal({ kind: 'reject', reason: 'queue_full' });
    // The suspended request is requeued although the queue is at its bound: it was admitted already.
    expect(core.suspended(id('l0'), 'l0')).to.deep.equal({ placements: [place(0, 'h0')], drop: undefined });
    expect(core.depth('m')).to.deep.equal({ queued: 3, active: 1 });
    expect(drainOrder(core, 'h0')).to.deep.equal(['l0(resume)', 'l1', 'l2']);
  });

  it('drops a request cancelled while being suspended, and frees the sequence of one that finished first', () => {
    const core = makeScheduler({ engines: [2], fairness: preempting });
    makeRequests(2, { prefix: 'a' }).forEach((r) => admit(core, r));
    expect(admit(core, makeRequests(1, { priority: 9, prefix: 'h' })[0]!)).to.deep.equal(queued([suspend(0, 'a0', 'preempt')]));
    expect(admit(core, makeRequests(1, { priority: 9, prefix: 'k' })[0]!)).to.deep.equal(queued([suspend(0, 'a1', 'preempt')]));
    expect(core.cancel(id('a0'))).to.equal(undefined); // running: the engine is told through the request port
    expect(core.suspended(id('a0'), 'a0*')).to.deep.equal({ placements: [place(0, 'h0')], drop: 'a0*' });
    expect(core.released(id('a1'), undefined, 3)).to.deep.equal([place(0, 'k0')]);
    expect(core.suspended(id('zz'), 'zz')).to.deep.equal({ placements: [], drop: 'zz' }); // unknown: drop
    expect(core.depth('m')).to.deep.equal({ queued: 0, active: 2 });
    expect(core.counters()).to.deep.include({ preemptions: 0, resumes: 0 });
  });

  it('forgets requests lost with their engine, and resumes suspended ones elsewhere', () => {
    const core = makeScheduler({ engines: [1, 1], fairness: preempting });
    makeRequests(2, { prefix: 'a' }).forEach((r) => admit(core, r)); // a0@0, a1@1
    expect(admit(core, makeRequests(1, { priority: 9, prefix: 'h' })[0]!)).to.deep.equal(queued([suspend(0, 'a0', 'preempt')]));
    expect(core.suspended(id('a0'), 'a0')).to.deep.equal({ placements: [place(0, 'h0')], drop: undefined });
    core.engineDown({ model: 'm', worker: 0 }); // h0 fails with its port
    expect(core.depth('m')).to.deep.equal({ queued: 1, active: 1 });
    expect(core.released(id('a1'))).to.deep.equal([place(1, 'a0', 0)]);
  });
});
