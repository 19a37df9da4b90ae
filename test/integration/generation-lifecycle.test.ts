/**
 * The sink lifecycle on real engines: every way a generation can go (one choice, several, a cancel,
 * an error before any work, a request the full queue turns away) calls the sink in the contract's
 * order, checked by test/helpers/lifecycle-sink.ts. Runs the actor system in-process from dist/.
 */
import { expect } from 'chai';
import { startActors, type InProcessActors } from '../helpers/actors.js';
import { checkedSink } from '../helpers/lifecycle-sink.js';
import { until } from '../helpers/until.js';
import type { GenerateInput } from '../../src/generation/contract.js';
import { samplingWith, type SamplingSettings } from '../../src/runtime/sampling.js';

function input(n: number, params: Partial<SamplingSettings>, prompt: GenerateInput['prompt'] = { kind: 'text', text: 'lifecycle test' }): GenerateInput {
  return { requestId: `lc-${Math.random().toString(36).slice(2)}`, model: undefined, prompt, n, params: samplingWith(params) };
}

describe('generation sink lifecycle (real engines)', function () {
  this.timeout(120_000);
  let actors: InProcessActors;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let gateway: any;

  before(async () => {
    // One worker with one sequence and a queue of one: the third concurrent request is turned away.
    actors = await startActors({ INFERFLUX_SEQUENCES_PER_WORKER: '1' }, 'scheduler:\n  max_queue: 1\n');
    gateway = actors.gateway;
  });

  after(async () => {
    await actors?.stop();
  });

  it('one choice: start, text, its end, then the end', async () => {
    const c = checkedSink(1);
    gateway.generate(input(1, { maxTokens: 8, temperature: 0, ignoreEos: true }), c.sink);
    expect(await c.settled).to.equal('end');
    expect(c.violations).to.deep.equal([]);
    expect(c.calls[0]).to.equal('start');
    expect(c.calls.at(-2)).to.equal('choiceEnd:0:length');
    expect(c.calls.filter((x) => x === 'text:0').length).to.be.greaterThan(0);
  });

  it('two choices: each ends once, all before the end', async () => {
    // Each choice takes a sequence or a queue place: two fit this server (one sequence, queue of one)
    // once the scheduler has the previous test's release (it reaches the scheduler from the engine,
    // not through the sink that just ended).
    await until('the scheduler sees the sequence free', 10_000, async () => ((await actors.activeSequences()) === 0 ? true : undefined));
    const c = checkedSink(2);
    gateway.generate(input(2, { maxTokens: 4, temperature: 0.9, seed: 11, ignoreEos: true }), c.sink);
    expect(await c.settled).to.equal('end');
    expect(c.violations).to.deep.equal([]);
    expect(c.calls.filter((x) => x.startsWith('choiceEnd:')).sort()).to.deep.equal(['choiceEnd:0:length', 'choiceEnd:1:length']);
  });

  it('a cancel mid-stream: no call reaches the sink after it', async () => {
    const c = checkedSink(1);
    const handle = gateway.generate(input(1, { maxTokens: 1500, temperature: 0, ignoreEos: true }), c.sink);
    while (!c.calls.includes('text:0')) await new Promise((r) => setTimeout(r, 5));
    handle.cancel();
    const seen = c.calls.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(c.calls.length).to.equal(seen);
    expect(c.violations).to.deep.equal([]);
  });

  it('an error before any work: only the error (no start, no 200 stream)', async () => {
    const c = checkedSink(1);
    gateway.generate(input(1, { maxTokens: 4 }, { kind: 'tokens', tokens: [1, 999_999] }), c.sink);
    expect(await c.settled).to.equal('error');
    expect(c.calls).to.deep.equal(['error:invalid_request']);
    expect(c.violations).to.deep.equal([]);
  });

  it('a request the full queue turns away gets only queue_full, never a start', async () => {
    const running = checkedSink(1);
    const queued = checkedSink(1);
    const refused = checkedSink(1);
    const long = { maxTokens: 400, temperature: 0, ignoreEos: true };
    const h1 = gateway.generate(input(1, long), running.sink);
    while (!running.calls.includes('start')) await new Promise((r) => setTimeout(r, 5));
    // Paused (as a slow reader would): it keeps the only sequence without finishing.
    h1.pause();
    const h2 = gateway.generate(input(1, long), queued.sink);
    await new Promise((r) => setTimeout(r, 200));
    const h3 = gateway.generate(input(1, long), refused.sink);
    // The queue holds one: either the newcomer is refused or (fair share) the older waiter is evicted.
    const loser = await Promise.race([queued.settled.then(() => queued), refused.settled.then(() => refused)]);
    const waiter = loser === queued ? refused : queued;
    expect(loser.calls).to.deep.equal(['error:queue_full']);
    // The one still waiting has not started: its client still waits for headers, not reading a 200.
    expect(waiter.calls).to.deep.equal([]);
    h1.cancel();
    h2.cancel();
    h3.cancel();
    for (const c of [running, queued, refused]) expect(c.violations).to.deep.equal([]);
  });
});
