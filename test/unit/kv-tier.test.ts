import { expect } from 'chai';
import { readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvTier, type KvTierOptions } from '../../src/actors/engine/kv-tier.js';
import type { BatchContext } from '../../src/runtime/llama/batch-adapter.js';

/**
 * KvTier's priming of host pages (what an idle engine worker does with nothing to save). No
 * llama.cpp call is involved; saving and loading through the real context is
 * test/integration/prefix-cache.test.ts.
 */
describe('engine KvTier: host pages primed ahead of use', () => {
  let dir: string;
  const tiers: KvTier[] = [];
  const open = async (o: Partial<KvTierOptions> = {}): Promise<KvTier> => {
    const t = await KvTier.open({} as BatchContext, {
      model: 'tiny', modelPath: join(dir, 'model.gguf'), worker: 0, sequences: 4, contextSize: 256, flashAttention: 'auto', metalLayers: null,
      cpuPages: 10, eviction: 'lru', diskPath: '', diskWorkers: 1, diskQueueDepth: 4, stateDir: dir, ...o,
    });
    tiers.push(t);
    return t;
  };
  const files = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.kvcache'));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ifx-kvtier-'));
    writeFileSync(join(dir, 'model.gguf'), 'weights');
  });
  afterEach(async () => {
    for (const t of tiers.splice(0)) await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('allocates the budget a few pages at a time, then stops and removes its primer file', async () => {
    const tier = await open();
    expect(tier.primeHostPages(4)).to.equal(4);
    expect(files(), 'one primer file while priming').to.have.length(1);
    expect(tier.primeHostPages(4)).to.equal(4);
    expect(tier.primeHostPages(4)).to.equal(2);
    expect(tier.status().host).to.include({ pagesAllocated: 10, pagesUsed: 0, pagesTotal: 10 });
    expect(files(), 'removed once the budget is allocated').to.deep.equal([]);
    expect(tier.primeHostPages(4)).to.equal(0);
  });

  it('two tiers of one process (two models\' worker 0) prime side by side; closing one leaves the other priming', async () => {
    const a = await open();
    const b = await open({ model: 'other' });
    expect(a.primeHostPages(2)).to.equal(2);
    expect(b.primeHostPages(2)).to.equal(2);
    expect(files()).to.have.length(2);
    await a.close();
    tiers.splice(tiers.indexOf(a), 1);
    expect(b.primeHostPages(2)).to.equal(2);
    expect(a.primeHostPages(2), 'a closed tier primes nothing').to.equal(0);
  });

  it('a failure to prime is logged and only stops priming: pages are then allocated on first use', async () => {
    const tier = await open({ stateDir: join(dir, 'missing') }); // no tmpfs directory to write the primer in
    expect(tier.primeHostPages(4)).to.equal(0);
    expect(tier.status().host.pagesAllocated, 'the budget is untouched').to.equal(0);
    expect(tier.primeHostPages(4), 'not retried').to.equal(0);
  });
});
