/** The engine's adapter gate (actors/engine/adapter-gate.ts): one adapter per context, FIFO across adapters, swaps only when idle. */
import { expect } from 'chai';
import { AdapterGate } from '../../src/actors/engine/adapter-gate.js';
import type { AdmitBody } from '../../src/actors/protocol.js';

const ref = (key: string) => (key === '' ? null : { key, path: `/a/${key}.gguf`, scale: 1 });
const admit = (id: string, key: string) => ({ id, req: { adapter: ref(key) } as AdmitBody });
const ids = (xs: { id: string }[]) => xs.map((x) => x.id);

describe('adapter gate', () => {
  it('admits the base requests in order while the context runs the base', () => {
    const g = new AdapterGate();
    const d = g.decide([admit('1', ''), admit('2', '')], 3);
    expect([d.swap, ids(d.admit)]).to.deep.equal([undefined, ['1', '2']]);
  });

  it('stops at the first request of another adapter: later same-adapter requests wait behind it', () => {
    const g = new AdapterGate();
    const d = g.decide([admit('1', ''), admit('2', 'A'), admit('3', '')], 1);
    expect([d.swap, ids(d.admit)]).to.deep.equal([undefined, ['1']]);
  });

  it('waits while sequences run under the current adapter, then swaps to the oldest waiting one', () => {
    const g = new AdapterGate();
    expect(g.decide([admit('2', 'A'), admit('3', '')], 2)).to.deep.equal({ swap: undefined, admit: [] });
    const d = g.decide([admit('2', 'A'), admit('4', 'A'), admit('3', '')], 0);
    expect([d.swap, ids(d.admit)]).to.deep.equal([ref('A'), ['2', '4']]);
    g.swapped('A');
    expect([g.current, g.swaps]).to.deep.equal(['A', 1]);
    // Back to the base: a swap to null.
    expect(g.decide([admit('3', '')], 0).swap).to.equal(null);
  });

  it('does nothing without waiting requests', () => {
    expect(new AdapterGate().decide([], 0)).to.deep.equal({ swap: undefined, admit: [] });
  });
});
