/**
 * `runtime.sequences_per_worker: auto` is fitted to the memory budget at start: the packed default
 * (16 on 2 cores) is halved until the configured model fits, and every part of the server (engine
 * contexts, the registry's estimate, the console) then uses that one count.
 */
import { expect } from 'chai';
import { readGgufHeader } from '../../src/runtime/gguf/reader.js';
import { estimateModelMemory, hostCacheBytes } from '../../src/registry/memory-estimate.js';
import { modelMetadata } from '../../src/registry/model-metadata.js';
import { api, startServer, tinyModel, type RunningServer } from '../helpers/server.js';

const ADMIN = 'ifx-test-seqfit-admin-0123456789';

describe('sequences per worker: auto fitted to the memory budget (real server)', function () {
  this.timeout(120_000);
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  async function estimate(sequences: number): Promise<number> {
    const info = await readGgufHeader(await tinyModel());
    return estimateModelMemory(modelMetadata(info), info.fileSize, { workers: 2, contextSize: 2048, sequences, hostCacheBytes: hostCacheBytes(2, 0, 512) }).totalBytes;
  }

  async function start(env: Record<string, string>): Promise<{ used: number; completion: number }> {
    server = await startServer({ INFERFLUX_CORES: '2', INFERFLUX_CONTEXT_SIZE: '2048', INFERFLUX_API_KEYS: `${ADMIN}:admin|generate|read`, ...env });
    const r = await api(server, 'GET', '/v1/admin/models', undefined, ADMIN);
    expect(r.status).to.equal(200);
    const c = await api(server, 'POST', '/v1/completions', { prompt: 'The', max_tokens: 4, temperature: 0, ignore_eos: true }, ADMIN);
    expect(c.status, JSON.stringify(c.body)).to.equal(200);
    return { used: r.body.memory.estimated_used_bytes as number, completion: c.body.usage.completion_tokens as number };
  }

  it('keeps 16 when the budget allows, and lowers it (halving) when it does not', async () => {
    const roomy = await start({});
    expect(server!.logs()).to.match(/sequences per worker: 16 \(auto, up to 16, fitted to the/);
    expect(roomy.used).to.equal(await estimate(16));
    expect(roomy.completion).to.equal(4);
    await server!.stop();

    // Room for 4 sequences per worker, not 8: the served count is 4 everywhere.
    const budget = Math.floor(((await estimate(4)) + (await estimate(8))) / 2);
    const tight = await start({ INFERFLUX_MEMORY_BUDGET_BYTES: String(budget) });
    expect(server!.logs()).to.match(/sequences per worker: 4 \(auto, up to 16, fitted to the/);
    expect(tight.used).to.equal(await estimate(4));
    expect(tight.completion).to.equal(4);
  });

  it('an explicit count is served as given', async () => {
    const given = await start({ INFERFLUX_SEQUENCES_PER_WORKER: '8' });
    expect(server!.logs()).to.not.match(/sequences per worker: \d+ \(auto/);
    expect(given.used).to.equal(await estimate(8));
  });
});
