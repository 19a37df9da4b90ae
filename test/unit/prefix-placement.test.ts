import { expect } from 'chai';
import { SchedulerCore } from '../../src/actors/scheduler/core.js';
import type { RequestId } from '../../src/actors/protocol.js';
import { BLOCK, prefixBlocks, sharedBlocks } from '../../src/runtime/prefix/block-hash.js';

const id = (s: string) => s as RequestId;
const seq = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

describe('prefix fingerprints', () => {
  it('share exactly the blocks of a shared prefix', () => {
    const a = seq(100);
    const b = [...seq(70), 999, ...seq(29)];
    expect(prefixBlocks(a)).to.have.length(Math.floor(100 / BLOCK));
    expect(sharedBlocks(prefixBlocks(a), prefixBlocks(b))).to.equal(Math.floor(70 / BLOCK));
    expect(sharedBlocks(prefixBlocks(a), prefixBlocks(seq(100, 2)))).to.equal(0);
  });
});

describe('SchedulerCore placement by prefix', () => {
  it('places a request on the worker holding its prefix, even when another is less loaded', () => {
    const core = new SchedulerCore<string>(10);
    core.engineUp({ model: 'm', worker: 0 }, 4);
    core.engineUp({ model: 'm', worker: 1 }, 4);
    const system = seq(200);
    core.residentPrefixes({ model: 'm', worker: 1 }, [prefixBlocks([...system, 5, 6])]);
    core.admit(id('busy'), 'm', 0, 'B', { prefix: prefixBlocks(seq(64, 500)) }); // lands on worker 0 (no match anywhere, least loaded, lowest index)
    const a = core.admit(id('turn2'), 'm', 0, 'T', { prefix: prefixBlocks([...system, 7, 8, 9]) });
    expect(a).to.deep.include({ kind: 'place', engine: { model: 'm', worker: 1 } });
    // Without a matching prefix the least-loaded worker wins again.
    core.admit(id('x'), 'm', 0, 'X', { prefix: prefixBlocks(seq(64, 900)) });
    const b = core.admit(id('y'), 'm', 0, 'Y', { prefix: prefixBlocks(seq(64, 1900)) });
    expect(b.kind).to.equal('place');
  });

  it('falls back to any free worker when the one with the prefix is full', () => {
    const core = new SchedulerCore<string>(10);
    core.engineUp({ model: 'm', worker: 0 }, 1);
    core.engineUp({ model: 'm', worker: 1 }, 1);
    const p = prefixBlocks(seq(128));
    core.residentPrefixes({ model: 'm', worker: 0 }, [p]);
    expect(core.admit(id('a'), 'm', 0, 'A', { prefix: p })).to.deep.include({ engine: { model: 'm', worker: 0 } });
    expect(core.admit(id('b'), 'm', 0, 'B', { prefix: p })).to.deep.include({ engine: { model: 'm', worker: 1 } });
  });

  it('places a request where one with the same prefix runs (its KV is copied there), before the less loaded worker', () => {
    const core = new SchedulerCore<string>(10);
    core.engineUp({ model: 'm', worker: 0 }, 4);
    core.engineUp({ model: 'm', worker: 1 }, 4);
    const system = seq(200);
    const place = (name: string, prefix: number[]) => core.admit(id(name), 'm', 0, name, { prefix: prefixBlocks(prefix) });
    expect(place('first', [...system, 1])).to.deep.include({ engine: { model: 'm', worker: 0 } });
    expect(place('a', seq(64, 500))).to.deep.include({ engine: { model: 'm', worker: 1 } });
    expect(place('b', seq(64, 700))).to.deep.include({ engine: { model: 'm', worker: 0 } }); // tie: lowest
    // Worker 0 runs 2, worker 1 runs 1, and neither holds the system prompt yet (no resident
    // fingerprints); but worker 0 runs `first`, so the next agent sharing it goes there.
    expect(place('second', [...system, 2, 3])).to.deep.include({ engine: { model: 'm', worker: 0 } });
    expect(place('c', seq(64, 900))).to.deep.include({ engine: { model: 'm', worker: 1 } });
  });
});
