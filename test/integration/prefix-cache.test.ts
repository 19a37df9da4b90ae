/**
 * Prefix cache tiers on the real engine: a prefix evicted from its sequence is kept in the host
 * page pool, spills to the disk tier, is served from disk after a restart, and is loaded back
 * instead of prefilled, with output identical to a cold run.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metric, startServer, type RunningServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';
import { TINY_MODEL, greedyCompletion, words } from '../helpers/greedy-completion.js';

const MODEL = TINY_MODEL;
const complete = (url: string, prompt: string) => greedyCompletion(url, prompt);

describe('prefix cache tiers (real engine)', function () {
  this.timeout(180_000);
  let dir: string;
  let server: RunningServer;
  // One sequence: every new prompt evicts the previous one's KV from it.
  const env = () => ({
    INFERFLUX_DECODE_POOL_SIZE: '1',
    // One thread: two spin-waiting llama.cpp threads crawl when other jobs share the cores.
    INFERFLUX_THREADS_PER_WORKER: '1',
    INFERFLUX_SEQUENCES_PER_WORKER: '1',
    INFERFLUX_KV_CPU_PAGES: '1',
    INFERFLUX_NVME_OFFLOAD_PATH: join(dir, 'kv'),
  });
  const P = words(1, 80);
  const Q = words(2, 80);
  const R = words(3, 80);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-kv-'));
    server = await startServer(env());
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps an evicted prefix in the host pool and loads it back with identical output', async () => {
    const cold = await complete(server.url, P);
    expect(cold.cached).to.equal(0);
    await complete(server.url, Q); // overwrites the sequence: P's KV goes to the host pool
    const warm = await complete(server.url, P);
    expect(warm.text).to.equal(cold.text);
    expect(warm.cached).to.equal(cold.prompt - 1);
    expect(await metric(server.url, `inferflux_prefix_hits_total{model="${MODEL}"}`)).to.be.at.least(1);
    const status = (await (await fetch(`${server.url}/v1/admin/cache`)).json()) as { workers: { cache: { entries: number; host: { pagesUsed: number } } }[] };
    expect(status.workers[0]!.cache.entries).to.be.at.least(1);
  });

  it('spills to disk when the host pool is full, and the disk tier is warm after a restart', async () => {
    // With one 256 KiB host page, keeping Q and R pushes older snapshots to disk.
    await complete(server.url, R);
    await complete(server.url, Q);
    await complete(server.url, R);
    const before = (await (await fetch(`${server.url}/v1/admin/cache`)).json()) as { workers: { cache: { diskEntries: number } }[] };
    expect(before.workers[0]!.cache.diskEntries).to.be.at.least(1);
    const reference = await complete(server.url, P);
    await server.stop();
    server = await startServer(env());
    const afterRestart = await complete(server.url, P);
    expect(afterRestart.text).to.equal(reference.text);
    expect(afterRestart.cached).to.equal(afterRestart.prompt - 1);
  });

  it('flush drops every tier', async () => {
    const flush = await fetch(`${server.url}/v1/admin/cache`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'flush' }),
    });
    expect(flush.status).to.equal(200);
    const again = await complete(server.url, P);
    expect(again.cached).to.equal(0);
  });

  it('warms a prefix through the admin API', async () => {
    const warm = await fetch(`${server.url}/v1/admin/cache`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'warm', prompt: R }),
    });
    expect(warm.status).to.equal(200);
    const r = await complete(server.url, R + ' and a new question');
    expect(r.cached).to.be.greaterThan(300);
    const bad = await fetch(`${server.url}/v1/admin/cache`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'warm' }) });
    expect(bad.status).to.equal(400);
  });
});

describe('prefix cache: an idle worker saves the prompt the next request will overwrite (real engine)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  before(async () => {
    server = await startServer({ INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_THREADS_PER_WORKER: '1', INFERFLUX_SEQUENCES_PER_WORKER: '2' });
  });
  after(async () => {
    await server?.stop();
  });
  const stores = async (): Promise<number> =>
    ((await (await fetch(`${server.url}/v1/admin/cache`)).json()) as { workers: { cache: { counters: { stores: number } } }[] }).workers[0]!.cache.counters.stores;

  it('allocates and primes its host pages while idle, before any snapshot needs them', async () => {
    type Pool = { pagesTotal: number; pagesAllocated: number; pagesUsed: number };
    const pool = async (): Promise<Pool> =>
      ((await (await fetch(`${server.url}/v1/admin/cache`)).json()) as { workers: { cache: { host: Pool } }[] }).workers[0]!.cache.host;
    const full = await until('the whole host budget allocated', 20_000, async () => {
      const p = await pool();
      return p.pagesAllocated === p.pagesTotal ? p : undefined;
    });
    expect(full.pagesTotal).to.equal(512); // runtime.paged_kv.cpu_pages' default
    expect(full.pagesUsed, 'primed pages wait on the free list').to.equal(0);
  });

  it('saves it while idle, not on the next request\'s path, and serves it back with identical output', async () => {
    const P = words(11, 80);
    const cold = await complete(server.url, P); // sequence 0
    await complete(server.url, words(12, 80)); // sequence 1 (the empty one); then idle: 0 is next
    await until('P saved while idle', 10_000, async () => ((await stores()) === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(await stores(), 'nothing more to save: the other sequence was used last').to.equal(1);
    // A new prompt takes sequence 0: P is already kept, so nothing is saved on its way in; once
    // idle again, sequence 1's prompt is next.
    await complete(server.url, words(13, 80));
    await until('the next one saved while idle', 10_000, async () => ((await stores()) === 2 ? true : undefined));
    const warm = await complete(server.url, P);
    expect(warm.text).to.equal(cold.text);
    expect(warm.cached).to.equal(cold.prompt - 1);
  });
});

describe('exact-match response cache (opt-in)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  before(async () => {
    server = await startServer({ INFERFLUX_RESPONSE_CACHE: 'true' });
  });
  after(async () => {
    await server?.stop();
  });

  it('serves a repeated deterministic request from the cache, and never a sampled one', async () => {
    const ask = async (extra: object) => {
      const res = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, prompt: 'cache me', max_tokens: 12, ignore_eos: true, ...extra }),
      });
      return (await res.json()) as { choices: { text: string; finish_reason: string }[]; usage: { completion_tokens: number } };
    };
    const hits = () => metric(server.url, `inferflux_stream_cache_hits_total{model="${MODEL}"}`);
    const first = await ask({ temperature: 0 });
    expect(await hits()).to.equal(0);
    const second = await ask({ temperature: 0 });
    expect(await hits()).to.equal(1);
    expect(second.choices).to.deep.equal(first.choices);
    expect(second.usage.completion_tokens).to.equal(12);
    await ask({ temperature: 0, max_tokens: 11 }); // another parameter: another key
    expect(await hits()).to.equal(1);
    await ask({ temperature: 1 });
    await ask({ temperature: 1 });
    expect(await hits()).to.equal(1);
    await ask({ temperature: 1, seed: 3 });
    await ask({ temperature: 1, seed: 3 });
    expect(await hits()).to.equal(2);
  });
});
