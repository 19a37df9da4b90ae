/**
 * Long-prompt isolation in the scheduler core: a fresh request with many prompt tokens left to
 * prefill gets its worker to itself; the streams running there move to the model's other workers,
 * and new placements avoid it until its first token.
 */
import { expect } from 'chai';
import { SchedulerCore } from '../../src/actors/scheduler/core.js';
import { prefixBlocks } from '../../src/runtime/prefix/block-hash.js';
import { eng, id, MODEL, place } from '../helpers/scheduler.js';

const THRESHOLD = 1024;

function core(engines: number[], threshold = THRESHOLD): SchedulerCore<string> {
  const c = new SchedulerCore<string>(100, {}, threshold);
  engines.forEach((capacity, worker) => c.engineUp({ model: MODEL, worker }, capacity));
  return c;
}

function admit(c: SchedulerCore<string>, rid: string, promptTokens: number, o: { mayIsolate?: boolean; prefix?: number[] } = {}) {
  return c.admit(id(rid), MODEL, 0, rid, { promptTokens, mayIsolate: o.mayIsolate ?? true, prefix: o.prefix ?? [] });
}

const migrate = (worker: number, rid: string) => ({ engine: eng(worker), id: id(rid), reason: 'migrate' as const });

describe('scheduler: long-prompt isolation', () => {
  it('moves the streams off the long prompt\'s worker, resumes them elsewhere, and keeps new work away until its first token', () => {
    const c = core([4, 4]);
    for (const r of ['a', 'b', 'c', 'd']) admit(c, r, 32);
    // Least loaded first, lowest worker on ties: a, c on 0; b, d on 1.
    expect(admit(c, 'long', 2000)).to.deep.include({ kind: 'place', engine: eng(0) });
    expect(c.takeSuspensions()).to.deep.equal([migrate(0, 'a'), migrate(0, 'c')]);
    expect(c.takeSuspensions(), 'handed out once').to.deep.equal([]);

    // The engine saved them; each resumes on worker 1, never back on 0.
    expect(c.suspended(id('a'), 'a').placements).to.deep.equal([place(1, 'a', 0)]);
    expect(c.suspended(id('c'), 'c').placements).to.deep.equal([place(1, 'c', 0)]);
    expect(c.counters().migrations).to.equal(2);
    expect(c.counters().preemptions + c.counters().yields).to.equal(0);

    // Worker 1 is full: a short request goes to the isolated worker only because nothing else
    // can take it (waiting would be worse than sharing a step with the prompt).
    expect(admit(c, 'e', 32)).to.deep.include({ kind: 'place', engine: eng(0) });
    c.released(id('e'));
    c.released(id('b'));
    // Room on both: the isolated worker is avoided.
    expect(admit(c, 'f', 32)).to.deep.include({ kind: 'place', engine: eng(1) });
    // First token of the long prompt: worker 0 is ordinary again (and now the least loaded).
    c.progress(id('long'), 1);
    expect(admit(c, 'g', 32)).to.deep.include({ kind: 'place', engine: eng(0) });
  });

  it('moves only as many streams as the other workers have free sequences', () => {
    const c = core([4, 3]);
    for (const r of ['a', 'b', 'c', 'd', 'e']) admit(c, r, 32); // a c e on 0, b d on 1
    expect(admit(c, 'long', 1500)).to.deep.include({ kind: 'place', engine: eng(1) }); // 2 + long = 3 on worker 1
    expect(c.takeSuspensions()).to.deep.equal([migrate(1, 'b')]); // worker 0 has one free sequence
  });

  it('does nothing for short prompts, cached prefixes, single workers, prefill pools, or threshold 0', () => {
    const short = core([4, 4]);
    admit(short, 'a', 32);
    admit(short, 'b', 1000, {});
    expect(short.takeSuspensions()).to.deep.equal([]);

    // 2000 tokens, of which the worker holding the first 1984 already has them: 16 left to prefill.
    const tokens = Array.from({ length: 2000 }, (_, i) => i % 500);
    const prefix = prefixBlocks(tokens);
    const cached = core([4, 4]);
    admit(cached, 'a', 32);
    admit(cached, 'b', 32);
    cached.residentPrefixes(eng(1), [prefix.slice(0, 62)]);
    expect(admit(cached, 'long', 2000, { prefix })).to.deep.include({ kind: 'place', engine: eng(1) });
    expect(cached.takeSuspensions()).to.deep.equal([]);

    const single = core([4]);
    admit(single, 'a', 32);
    admit(single, 'long', 2000);
    expect(single.takeSuspensions()).to.deep.equal([]);

    const pool = core([4, 4]);
    admit(pool, 'a', 32);
    admit(pool, 'long', 2000, { mayIsolate: false });
    expect(pool.takeSuspensions()).to.deep.equal([]);

    const off = core([4, 4], 0);
    admit(off, 'a', 32);
    admit(off, 'long', 2000);
    expect(off.takeSuspensions()).to.deep.equal([]);
  });

  it('a cancelled long prompt ends the isolation; a migrating request cancelled meanwhile is dropped', () => {
    const c = core([2, 2]);
    admit(c, 'a', 32); // worker 0
    admit(c, 'long', 2000); // worker 1 (least loaded)
    admit(c, 'b', 32); // worker 0 (worker 1 is isolating)
    expect(c.takeSuspensions()).to.deep.equal([]);
    c.released(id('long'));
    expect(admit(c, 'x', 32)).to.deep.include({ kind: 'place', engine: eng(1) });

    const d = core([2, 2]);
    admit(d, 'a', 32); // worker 0
    admit(d, 'b', 32); // worker 1
    admit(d, 'long', 2000); // worker 0
    expect(d.takeSuspensions()).to.deep.equal([migrate(0, 'a')]);
    expect(d.cancel(id('a'))).to.equal(undefined);
    expect(d.suspended(id('a'), 'a')).to.deep.equal({ placements: [], drop: 'a' });
  });
});

describe('scheduler: packed placement', () => {
  const packed = (engines: number[]): SchedulerCore<string> => {
    const c = new SchedulerCore<string>(100, {}, THRESHOLD, 'pack');
    engines.forEach((capacity, worker) => c.engineUp({ model: MODEL, worker }, capacity));
    return c;
  };

  it('fills the busiest worker with room, then the next; a long prompt goes to the least loaded and moves nobody', () => {
    const c = packed([3, 3]);
    for (const r of ['a', 'b', 'c']) expect(admit(c, r, 32)).to.deep.include({ kind: 'place', engine: eng(0) });
    expect(admit(c, 'd', 32), 'worker 0 is full').to.deep.include({ kind: 'place', engine: eng(1) });
    c.released(id('b'));
    // Worker 0 (2 running) is busier than worker 1 (1): packing refills it.
    expect(admit(c, 'e', 32)).to.deep.include({ kind: 'place', engine: eng(0) });
    c.released(id('d'));
    expect(admit(c, 'long', 2000)).to.deep.include({ kind: 'place', engine: eng(1) });
    expect(c.takeSuspensions(), 'its worker was idle: nothing to move').to.deep.equal([]);
    // The long prompt's worker is avoided by new short requests while it prefills.
    c.released(id('e'));
    expect(admit(c, 'f', 32)).to.deep.include({ kind: 'place', engine: eng(0) });
  });

  it('still puts a request where its prefix is cached before packing', () => {
    const c = packed([4, 4]);
    const prefix = prefixBlocks(Array.from({ length: 300 }, (_, i) => i + 1));
    admit(c, 'a', 32);
    admit(c, 'b', 32);
    c.residentPrefixes(eng(1), [prefix]);
    expect(admit(c, 'c', 300, { prefix }), 'worker 1 holds its prefix').to.deep.include({ kind: 'place', engine: eng(1) });
    expect(admit(c, 'd', 32), 'no prefix: the busier worker').to.deep.include({ kind: 'place', engine: eng(0) });
  });
});
