/**
 * Supervision with real engine workers: a worker that dies mid-generation ends its requests with
 * a clear error (never a hung stream) and is restarted; the same holds for the scheduler.
 * Runs the actor system in-process (from dist/, where the worker files are) to reach the threads.
 */
import { expect } from 'chai';
import { startActors, type InProcessActors } from '../helpers/actors.js';
import type { GenerateInput, TokenSink } from '../../src/generation/contract.js';
import { samplingWith } from '../../src/runtime/sampling.js';
import type { InferFluxError } from '../../src/errors.js';

interface Outcome {
  text: string;
  error: InferFluxError | null;
  ended: boolean;
}

function collect(): { sink: TokenSink; done: Promise<Outcome>; outcome: Outcome } {
  const outcome: Outcome = { text: '', error: null, ended: false };
  let resolve!: (o: Outcome) => void;
  const done = new Promise<Outcome>((r) => (resolve = r));
  const sink: TokenSink = {
    onStart: () => undefined,
    onText: (_c, t) => (outcome.text += t),
    onChoiceEnd: () => undefined,
    onEnd: () => {
      outcome.ended = true;
      resolve(outcome);
    },
    onError: (e) => {
      outcome.error = e;
      resolve(outcome);
    },
  };
  return { sink, done, outcome };
}

function input(maxTokens: number): GenerateInput {
  return {
    requestId: `sup-${Math.random().toString(36).slice(2)}`,
    model: undefined,
    prompt: { kind: 'text', text: 'supervision test' },
    n: 1,
    params: samplingWith({ maxTokens, temperature: 0, ignoreEos: true }),
  };
}

describe('actor supervision (real engines)', function () {
  this.timeout(120_000);
  let actors: InProcessActors;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let system: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let gateway: any;

  before(async () => {
    process.env.INFERFLUX_FAULT_INJECTION = '1';
    actors = await startActors();
    ({ system, gateway } = actors);
  });

  after(async () => {
    await actors?.stop();
    delete process.env.INFERFLUX_FAULT_INJECTION;
  });

  async function waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!gateway.readiness().ready) {
      if (Date.now() > deadline) throw new Error('engine did not come back');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('an engine crash fails in-flight requests with worker_crashed, then the engine restarts', async () => {
    const { sink, done, outcome } = collect();
    gateway.generate(input(1500), sink);
    while (outcome.text.length === 0) await new Promise((r) => setTimeout(r, 10));
    await system.injectEngineFault('tiny-seed0', 0);
    const result = await done;
    expect(result.ended).to.equal(false);
    expect(result.error?.code).to.equal('worker_crashed');
    expect(result.error?.status).to.equal(503);
    const deadline = Date.now() + 30_000;
    while (system.pools().find((p: { name: string }) => p.name === 'decode').restarts < 1) {
      if (Date.now() > deadline) throw new Error('engine was not restarted');
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitReady();
    const again = collect();
    gateway.generate(input(5), again.sink);
    const ok = await again.done;
    expect(ok.error).to.equal(null);
    expect(ok.ended).to.equal(true);
  });

  it('a scheduler crash is restarted and engines are re-linked', async () => {
    await system.workers('scheduler')[0].terminate();
    await new Promise((r) => setTimeout(r, 50));
    await waitReady();
    const again = collect();
    gateway.generate(input(5), again.sink);
    const ok = await again.done;
    expect(ok.error).to.equal(null);
    expect(ok.ended).to.equal(true);
    expect(system.pools().find((p: { name: string }) => p.name === 'scheduler').restarts).to.equal(1);
  });
});
