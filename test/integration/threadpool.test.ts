/**
 * The persistent llama.cpp thread pool in the real server: with one engine worker on 2 threads,
 * `runtime.threadpool: persistent` puts that worker's context on a pool of 2 (the metrics say so),
 * and greedy output is the same as with `per_step` (ggml starting threads every step).
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const SIZING = { INFERFLUX_CORES: '2', INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_THREADS_PER_WORKER: '2' };

describe('persistent llama.cpp thread pool (real server)', function () {
  this.timeout(180_000);
  const servers: RunningServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  async function greedy(server: RunningServer): Promise<string> {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    // ignore_eos: InferFlux's (and vLLM's) extension, so all 48 tokens are decoded.
    const res = await client.completions.create({
      model: 'tiny-seed0',
      prompt: 'A thread pool kept between steps',
      max_tokens: 48,
      temperature: 0,
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    return res.choices[0]!.text;
  }

  it('attaches one 2-thread pool to the engine context and changes no token', async () => {
    const persistent = await startServer({ ...SIZING, INFERFLUX_THREADPOOL: 'persistent' });
    servers.push(persistent);
    expect(persistent.logs()).to.contain('llama.cpp threads: one persistent pool per engine context (poll 0)');
    const withPool = await greedy(persistent);
    expect(await metric(persistent.url, 'inferflux_llama_threadpools')).to.equal(1);
    expect(await metric(persistent.url, 'inferflux_llama_threadpool_threads')).to.equal(2);

    const perStep = await startServer({ ...SIZING, INFERFLUX_THREADPOOL: 'per_step' });
    servers.push(perStep);
    expect(perStep.logs()).to.contain('llama.cpp threads: started per step (runtime.threadpool per_step)');
    expect(await greedy(perStep)).to.equal(withPool);
    expect(await metric(perStep.url, 'inferflux_llama_threadpools')).to.equal(0);
    expect(withPool.length).to.be.greaterThan(0);
  });
});
