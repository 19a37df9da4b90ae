import { expect } from 'chai';
import { SchedulerCore } from '../../src/actors/scheduler/core.js';
import type { RequestId } from '../../src/actors/protocol.js';

const id = (s: string) => s as RequestId;

describe('SchedulerCore', () => {
  it('places on the least-loaded engine, then queues, then rejects when the queue is full', () => {
    const core = new SchedulerCore<string>(2);
    core.engineUp({ model: 'm', worker: 0 }, 1);
    core.engineUp({ model: 'm', worker: 1 }, 1);
    expect(core.admit(id('a'), 'm', 0, 'A')).to.deep.equal({ kind: 'place', engine: { model: 'm', worker: 0 }, id: 'a', ref: 'A' });
    expect(core.admit(id('b'), 'm', 0, 'B')).to.deep.include({ kind: 'place', engine: { model: 'm', worker: 1 } });
    expect(core.admit(id('c'), 'm', 0, 'C')).to.deep.equal({ kind: 'queued', suspend: [], evict: [] });
    expect(core.admit(id('d'), 'm', 0, 'D')).to.deep.equal({ kind: 'queued', suspend: [], evict: [] });
    expect(core.admit(id('e'), 'm', 0, 'E')).to.deep.equal({ kind: 'reject', reason: 'queue_full' });
    expect(core.depth('m')).to.deep.equal({ queued: 2, active: 2 });
    expect(core.released(id('b'))).to.deep.equal([{ engine: { model: 'm', worker: 1 }, id: 'c', ref: 'C' }]);
  });

  it('orders the queue by priority, then arrival', () => {
    const core = new SchedulerCore<string>(10);
    core.engineUp({ model: 'm', worker: 0 }, 1);
    core.admit(id('run'), 'm', 0, 'R');
    core.admit(id('low1'), 'm', 0, 'L1');
    core.admit(id('high'), 'm', 5, 'H');
    core.admit(id('low2'), 'm', 0, 'L2');
    const order: string[] = [];
    let next = core.released(id('run'));
    while (next.length > 0) {
      order.push(next[0]!.ref);
      next = core.released(next[0]!.id);
    }
    expect(order).to.deep.equal(['H', 'L1', 'L2']);
  });

  it('cancels a queued request and forgets engines that went down', () => {
    const core = new SchedulerCore<string>(10);
    core.engineUp({ model: 'm', worker: 0 }, 1);
    core.admit(id('a'), 'm', 0, 'A');
    core.admit(id('b'), 'm', 0, 'B');
    expect(core.cancel(id('b'))).to.equal('B');
    expect(core.cancel(id('a'))).to.equal(undefined);
    core.engineDown({ model: 'm', worker: 0 });
    expect(core.admit(id('c'), 'm', 0, 'C')).to.deep.equal({ kind: 'queued', suspend: [], evict: [] });
    expect(core.engineUp({ model: 'm', worker: 0 }, 1)).to.deep.equal([{ engine: { model: 'm', worker: 0 }, id: 'c', ref: 'C' }]);
  });

  it('counts requests adopted after a scheduler restart against capacity', () => {
    const core = new SchedulerCore<string>(10);
    core.engineUp({ model: 'm', worker: 0 }, 2, 2);
    expect(core.admit(id('a'), 'm', 0, 'A')).to.deep.equal({ kind: 'queued', suspend: [], evict: [] });
    expect(core.released(id('old'), { model: 'm', worker: 0 })).to.deep.equal([{ engine: { model: 'm', worker: 0 }, id: 'a', ref: 'A' }]);
  });
});

describe('scheduler core: LoRA adapter placement', () => {
  const place = (core: SchedulerCore<string>, rid: string, adapter: string) => core.admit(id(rid), 'm', 0, rid, { adapter });

  it('places a request on a worker running its adapter (or idle) before one running another, even when busier', () => {
    const core = new SchedulerCore<string>(100);
    core.engineUp({ model: 'm', worker: 0 }, 4);
    core.engineUp({ model: 'm', worker: 1 }, 4);
    expect(place(core, 'a1', 'A')).to.deep.include({ kind: 'place', engine: { model: 'm', worker: 0 } });
    // Worker 0 runs A: a base request goes to the idle worker 1.
    expect(place(core, 'b1', '')).to.deep.include({ engine: { model: 'm', worker: 1 } });
    // A requests keep joining worker 0 although it is busier (2 then 3 running against 1), and a
    // base request joins worker 1 although worker 0 would win the tie-break.
    expect(place(core, 'a2', 'A')).to.deep.include({ engine: { model: 'm', worker: 0 } });
    expect(place(core, 'a3', 'A')).to.deep.include({ engine: { model: 'm', worker: 0 } });
    expect(place(core, 'b2', '')).to.deep.include({ engine: { model: 'm', worker: 1 } });
    core.released(id('b1'));
    core.released(id('b2'));
    expect(place(core, 'b3', '')).to.deep.include({ engine: { model: 'm', worker: 1 } });
    // A third adapter has no worker to itself: it still gets placed (and waits there for a swap).
    expect(place(core, 'c1', 'C')).to.deep.include({ kind: 'place' });
  });
});
