/**
 * Live prefix sharing on the real engine: requests that arrive together with the same long prompt
 * start (agents sharing a system prompt) prefill it once. The first is prefilled; the others wait
 * for that prefill, copy its KV cells into their own sequences and prefill only what differs, with
 * the output of a cold run. The host cache tier is off, so only the copy can explain the reuse.
 */
import { expect } from 'chai';
import { metric, startServer, type RunningServer } from '../helpers/server.js';
import { TINY_MODEL, greedyCompletion, words } from '../helpers/greedy-completion.js';

const MODEL = TINY_MODEL;
const complete = (url: string, prompt: string) => greedyCompletion(url, prompt, 12);

/** Forget every idle sequence's KV (and the cache tiers), so the next request is prefilled cold. */
async function flush(url: string): Promise<void> {
  const res = await fetch(`${url}/v1/admin/cache`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'flush' }) });
  expect(res.status).to.equal(200);
}

describe('live prefix sharing between sequences (real engine)', function () {
  this.timeout(180_000);
  let server: RunningServer;

  before(async () => {
    server = await startServer({
      INFERFLUX_DECODE_POOL_SIZE: '1',
      INFERFLUX_THREADS_PER_WORKER: '1',
      INFERFLUX_SEQUENCES_PER_WORKER: '4',
      // No host tier: a prefix can only come from the request's own sequence or another one's.
      INFERFLUX_KV_CPU_PAGES: '0',
    });
  });
  after(async () => {
    await server?.stop();
  });

  it('prefills a system prompt shared by requests arriving together once, with cold-run output', async () => {
    const system = words(11, 120);
    const prompts = [1, 2, 3].map((k) => `${system} ${words(100 + k, 6)}`);
    const matchedBefore = await metric(server.url, `inferflux_prefix_matched_tokens_total{model="${MODEL}"}`);
    const together = await Promise.all(prompts.map((p) => complete(server.url, p)));
    const prompt = together[0]!.prompt;
    expect(prompt).to.be.greaterThan(150);
    // The first is prefilled whole; the other two copy the shared part (all but the few tokens of
    // their own question) from it.
    const copied = together.filter((r) => r.cached > 0);
    expect(together.filter((r) => r.cached === 0)).to.have.length(1);
    expect(copied).to.have.length(2);
    for (const r of copied) expect(r.cached).to.be.within(r.prompt - 40, r.prompt - 1);
    expect(await metric(server.url, `inferflux_prefix_matched_tokens_total{model="${MODEL}"}`)).to.equal(matchedBefore + copied[0]!.cached + copied[1]!.cached);

    // Each alone on a cold engine: the same text.
    for (let k = 0; k < prompts.length; k++) {
      await flush(server.url);
      const cold = await complete(server.url, prompts[k]!);
      expect(cold.cached, `cold run ${k}`).to.equal(0);
      expect(together[k]!.text, `prompt ${k}`).to.equal(cold.text);
    }
  });

  it('does not wait for or copy a prefix shorter than what a copy saves', async () => {
    await flush(server.url);
    const short = words(12, 4);
    const together = await Promise.all([1, 2].map((k) => complete(server.url, `${short} ${words(200 + k, 60)}`)));
    for (const r of together) expect(r.cached).to.equal(0);
  });
});
