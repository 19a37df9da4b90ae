/**
 * Cache isolation on the real engine: with `runtime.cache_isolation: tenant` a prompt one tenant
 * sent is never served from KV to another tenant (no cached tokens, so no timing side channel),
 * while the same tenant still reuses it, from its sequence and from the host cache tier; a
 * request's `cache_salt` narrows reuse the same way in either mode. With the default `shared`,
 * the other tenant does reuse it (the contrast that shows the check can fail).
 */
import { expect } from 'chai';
import { startServer, type RunningServer } from '../helpers/server.js';
import { TINY_MODEL, words } from '../helpers/greedy-completion.js';

const KEY_A = 'sk-isolation-team-a-0001';
const KEY_B = 'sk-isolation-team-b-0002';
const KEYS = `${KEY_A}:generate|read@team-a,${KEY_B}:generate|read@team-b`;

interface Done {
  text: string;
  cached: number;
}

async function complete(server: RunningServer, key: string, prompt: string, extra: Record<string, unknown> = {}): Promise<Done> {
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: TINY_MODEL, prompt, max_tokens: 4, temperature: 0, ignore_eos: true, ...extra }),
  });
  const body = (await res.json()) as { choices: { text: string }[]; usage: { prompt_tokens_details: { cached_tokens: number } } };
  expect(res.status, JSON.stringify(body)).to.equal(200);
  return { text: body.choices[0]!.text, cached: body.usage.prompt_tokens_details.cached_tokens };
}

describe('cache isolation between tenants and salts (real engine)', function () {
  this.timeout(180_000);
  // One worker with two sequences, so the same prompt meets its own KV and, once evicted, the host tier.
  const sizing = { INFERFLUX_API_KEYS: KEYS, INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_THREADS_PER_WORKER: '1', INFERFLUX_SEQUENCES_PER_WORKER: '2' };

  describe('runtime.cache_isolation: tenant', () => {
    let server: RunningServer;
    before(async () => {
      server = await startServer({ ...sizing, INFERFLUX_CACHE_ISOLATION: 'tenant' });
    });
    after(async () => {
      expect(await server?.stop()).to.equal(0);
    });

    it("a tenant reuses its own prompt's KV, never another tenant's; answers are the same", async () => {
      const P = words(11, 60);
      const first = await complete(server, KEY_A, P);
      expect(first.cached).to.equal(0);
      const again = await complete(server, KEY_A, P);
      expect(again.cached).to.be.greaterThan(40);
      expect(again.text).to.equal(first.text);
      // Team b sends the very same prompt: computed again from scratch, with the same answer.
      const other = await complete(server, KEY_B, P);
      expect(other.cached).to.equal(0);
      expect(other.text).to.equal(first.text);
      // Team b's own repeat reuses team b's KV.
      expect((await complete(server, KEY_B, P)).cached).to.be.greaterThan(40);
      // Evict both from the two sequences with other prompts; team a's comes back from the host tier, still its own.
      await complete(server, KEY_A, words(12, 60));
      await complete(server, KEY_A, words(13, 60));
      const back = await complete(server, KEY_A, P);
      expect(back.cached).to.be.greaterThan(40);
      expect(back.text).to.equal(first.text);
    });
  });

  describe('runtime.cache_isolation: shared (the default)', () => {
    let server: RunningServer;
    before(async () => {
      server = await startServer(sizing);
    });
    after(async () => {
      expect(await server?.stop()).to.equal(0);
    });

    it('tenants share KV; a cache_salt keeps a request to its own salt', async () => {
      const P = words(21, 60);
      expect((await complete(server, KEY_A, P)).cached).to.equal(0);
      expect((await complete(server, KEY_B, P)).cached, 'shared across tenants').to.be.greaterThan(40);
      // A salted request reuses nothing unsalted, then its own salt's KV only.
      expect((await complete(server, KEY_B, P, { cache_salt: 'project-x' })).cached).to.equal(0);
      expect((await complete(server, KEY_A, P, { cache_salt: 'project-x' })).cached).to.be.greaterThan(40);
      expect((await complete(server, KEY_A, P, { cache_salt: 'project-y' })).cached).to.equal(0);
      const bad = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY_A}` },
        body: JSON.stringify({ model: TINY_MODEL, prompt: P, max_tokens: 1, cache_salt: '' }),
      });
      expect(bad.status).to.equal(400);
      expect(((await bad.json()) as { error: { param: string } }).error.param).to.equal('cache_salt');
    });
  });
});
