import { expect } from 'chai';
import { CoreClaims, createCoreBudget, reclaimCoreSlot } from '../../src/actors/core-budget.js';
import { startTsWorker } from '../helpers/ts-worker.js';

describe('core budget: llama.cpp threads follow the work, never more than the cores', () => {
  it('a lone prompt step takes every core; with another worker busy each gets its share', async () => {
    const sab = createCoreBudget(4);
    const a = new CoreClaims(sab, 0, 1, 32);
    const b = new CoreClaims(sab, 1, 1, 32);
    expect(await a.acquire(256)).to.equal(4);
    a.release(4);
    expect(await a.acquire(1), 'a decode step keeps the static share').to.equal(1);
    a.release(1);
    expect(await b.acquire(1)).to.equal(1); // b is busy now
    expect(await a.acquire(256), 'another worker is busy: no spreading').to.equal(1);
    a.release(1);
    b.release(1);
    b.idle();
    expect(await a.acquire(256), 'b went idle: a spreads again').to.equal(4);
    a.release(4);
  });

  it('a worker finding no free core waits until one is given back, then gets at most what is free', async () => {
    const sab = createCoreBudget(2);
    const a = new CoreClaims(sab, 0, 1, 32);
    const b = new CoreClaims(sab, 1, 1, 32);
    expect(await a.acquire(500)).to.equal(2);
    let got = 0;
    const waiting = b.acquire(1).then((n) => (got = n));
    await new Promise((r) => setTimeout(r, 20));
    expect(got, 'still waiting while a holds both cores').to.equal(0);
    a.release(2);
    await waiting;
    expect(got).to.equal(1);
    b.release(1);
  });

  it('spreading off (0) always claims the static share', async () => {
    const sab = createCoreBudget(8);
    const a = new CoreClaims(sab, 0, 2, 0);
    expect(await a.acquire(4096)).to.equal(2);
    a.release(2);
  });

  it('a dead worker\'s threads are reclaimed by the main thread', async () => {
    const sab = createCoreBudget(2);
    const dead = new CoreClaims(sab, 3, 1, 32);
    expect(await dead.acquire(100)).to.equal(2);
    reclaimCoreSlot(sab, 3); // it exited holding both
    const b = new CoreClaims(sab, 1, 1, 32);
    expect(await b.acquire(100), 'slot 3 no longer counts as busy either').to.equal(2);
    b.release(2);
  });

  it('three worker threads racing for 2 cores never hold more than 2, and spread when alone', async function () {
    this.timeout(30_000);
    const budget = createCoreBudget(2);
    const seen = new SharedArrayBuffer(8);
    const results = await Promise.all(
      [0, 1, 2].map(
        (slot) =>
          new Promise<{ spreads: number }>((resolve, reject) => {
            const w = startTsWorker(new URL('./fixtures/core-budget-worker.ts', import.meta.url), { budget, slot, base: 1, spread: 32, steps: 300, seen });
            w.once('message', (m: { spreads: number; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m)));
            w.once('error', reject);
          }),
      ),
    );
    const s = new Int32Array(seen);
    expect(s[0], 'most cores in use at once').to.be.at.most(2);
    expect(s[1], 'all given back').to.equal(0);
    expect(new Int32Array(budget)[0], 'free cores after the run').to.equal(2);
    expect(results.some((r) => r.spreads > 0), 'a worker alone with a prompt step spread to both cores').to.equal(true);
  });
});
