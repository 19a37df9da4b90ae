/** The supervisor's restart rules (src/supervisor.ts RestartPolicy), driven with explicit times. */
import { expect } from 'chai';
import { RestartPolicy, exitCodeOf } from '../../src/supervisor.js';

const ready = { everReady: true, stopping: false };
const abort = { code: null, signal: 'SIGABRT' as const };

describe('supervisor restart policy', () => {
  it('restarts a crashed server at once, then backs off 0.5, 1, 2, 4 s, and gives up past 5 crashes a minute', () => {
    const p = new RestartPolicy();
    const delays = [0, 1, 2, 3, 4].map((i) => p.onExit(i * 1000, abort, ready));
    expect(delays.map((d) => (d.action === 'restart' ? d.delayMs : -1))).to.deep.equal([0, 500, 1000, 2000, 4000]);
    expect(p.onExit(5000, abort, ready)).to.deep.equal({ action: 'exit', code: 134, why: 'crash loop: 6 crashes within 60 s; giving up' });
  });

  it('forgets crashes older than the window', () => {
    const p = new RestartPolicy({ maxRestarts: 2, windowMs: 10_000 });
    expect(p.onExit(0, abort, ready).action).to.equal('restart');
    expect(p.onExit(1000, abort, ready).action).to.equal('restart');
    expect(p.onExit(20_000, { code: 1, signal: null }, ready)).to.deep.equal({ action: 'restart', delayMs: 0, crashes: 1 });
  });

  it('does not restart a server that never got ready, one that exited 0, or when stopping', () => {
    const p = new RestartPolicy();
    expect(p.onExit(0, { code: 1, signal: null }, { everReady: false, stopping: false })).to.deep.equal({
      action: 'exit',
      code: 1,
      why: 'the server failed before it was ever ready; not restarting',
    });
    expect(p.onExit(0, { code: 0, signal: null }, ready)).to.deep.equal({ action: 'exit', code: 0, why: 'the server exited cleanly' });
    expect(p.onExit(0, { code: null, signal: 'SIGTERM' }, { everReady: true, stopping: true })).to.deep.equal({ action: 'exit', code: 143, why: 'stopped' });
  });

  it('maps a signal to 128 + its number', () => {
    expect([exitCodeOf(null, 'SIGKILL'), exitCodeOf(null, 'SIGSEGV'), exitCodeOf(3, null)]).to.deep.equal([137, 139, 3]);
  });
});
