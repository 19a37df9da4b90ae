/**
 * Runtime model changes survive a restart (`server.models_state_path`): a real server loads a
 * second generated model by path (made the default) and a pulled model by name, unloads the
 * configured one and loads a LoRA adapter onto the second; the state file says so (written
 * atomically: no temp file left), and a new server process on the same file serves exactly that
 * set, with the same greedy output. A state file
 * that does not parse, or has the wrong shape, stops start-up with a message naming it.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../src/runtime/gguf/generate.js';
import { generateLora } from '../../src/runtime/gguf/lora.js';
import { readGgufHeader } from '../../src/runtime/gguf/reader.js';
import { ModelStore } from '../../src/runtime/models/model-store.js';
import { api, startServer, type RunningServer } from '../helpers/server.js';

const PULLED = 'acme/third-GGUF:Q8_0';
const CONFIGURED = 'tiny-seed0';

describe('models state: runtime loads, unloads and the default survive a restart (real server)', function () {
  this.timeout(180_000);
  let dir: string;
  let statePath: string;
  let env: Record<string, string>;

  const greedy = async (s: RunningServer, model: string): Promise<string> => {
    const r = await api(s, 'POST', '/v1/completions', { model, prompt: 'Once', max_tokens: 8, temperature: 0, ignore_eos: true }, null);
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return r.body.choices[0].text as string;
  };
  const served = async (s: RunningServer) =>
    ((await api(s, 'GET', '/v1/admin/models', undefined, null)).body.data as { id: string; default: boolean; state: string }[]).map((m) => [m.id, m.default, m.state]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-state-'));
    statePath = join(dir, 'state', 'models_state.json');
    await generateModel({ shape: 'tiny', seed: 2, outPath: join(dir, 'second.gguf') });
    await generateModel({ shape: 'tiny', seed: 3, outPath: join(dir, 'third.gguf') });
    await generateLora({ base: await readGgufHeader(join(dir, 'second.gguf')), seed: 4, outPath: join(dir, 'style.gguf') });
    const store = new ModelStore(join(dir, 'pulled'));
    await store.ensureDirs();
    const bytes = readFileSync(join(dir, 'third.gguf'));
    const digest = createHash('sha256').update(bytes).digest('hex');
    copyFileSync(join(dir, 'third.gguf'), store.blobPath(digest));
    await store.put({ name: PULLED, source: PULLED, url: 'https://hub.example/acme/third-GGUF/resolve/main/third-Q8_0.gguf', quant: 'Q8_0', sha256: digest, size: bytes.length, pulled_at: new Date().toISOString(), architecture: 'llama' });
    env = { INFERFLUX_MODELS_STATE: statePath, INFERFLUX_MODELS_DIR: join(dir, 'pulled'), INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_THREADS_PER_WORKER: '1', INFERFLUX_CORES: '2' };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const adapters = async (s: RunningServer) =>
    ((await api(s, 'GET', '/v1/admin/adapters', undefined, null)).body.data as { id: string; model: string; scale: number }[]).map((x) => [x.id, x.model, x.scale]);

  it('a restart serves the models and adapters loaded, unloaded and made default at runtime', async () => {
    let before: Record<string, string>;
    const a = await startServer(env);
    try {
      // No change yet: no file.
      expect(existsSync(statePath)).to.equal(false);
      expect((await api(a, 'POST', '/v1/admin/models', { id: 'second', path: join(dir, 'second.gguf'), default: true }, null)).status).to.equal(201);
      expect((await api(a, 'POST', '/v1/admin/models', { model: PULLED }, null)).status).to.equal(201);
      expect((await api(a, 'DELETE', `/v1/admin/models/${CONFIGURED}`, undefined, null)).status).to.equal(200);
      expect((await api(a, 'POST', '/v1/admin/adapters', { model: 'second', id: 'style', path: join(dir, 'style.gguf'), scale: 0.5 }, null)).status).to.equal(201);
      // The admin API answered after the file was written.
      const kept = JSON.parse(readFileSync(statePath, 'utf8')) as Record<string, unknown>;
      expect(kept.updated_at).to.be.a('string');
      delete kept.updated_at;
      expect(kept).to.deep.equal({
        version: 1,
        loaded: [
          { id: 'second', path: realpathSync(join(dir, 'second.gguf')) },
          { id: PULLED, model: PULLED },
        ],
        unloaded: [CONFIGURED],
        default: 'second',
        adapters: [
          { id: 'style', model: 'second', path: realpathSync(join(dir, 'style.gguf')), scale: 0.5, sha256: createHash('sha256').update(readFileSync(join(dir, 'style.gguf'))).digest('hex') },
        ],
      });
      expect(readdirSync(join(dir, 'state'))).to.deep.equal(['models_state.json']); // no temp file left
      expect(await served(a)).to.deep.equal([
        ['second', true, 'ready'],
        [PULLED, false, 'ready'],
      ]);
      expect(await adapters(a)).to.deep.equal([['style', 'second', 0.5]]);
      before = { second: await greedy(a, 'second'), [PULLED]: await greedy(a, PULLED), 'second:style': await greedy(a, 'second:style') };
      expect(before.second).to.not.equal(before[PULLED]);
      expect(before['second:style']).to.not.equal(before.second);
    } finally {
      await a.stop();
    }

    const b = await startServer(env);
    try {
      expect(await served(b)).to.deep.equal([
        ['second', true, 'ready'],
        [PULLED, false, 'ready'],
      ]);
      expect(await adapters(b)).to.deep.equal([['style', 'second', 0.5]]);
      expect({ second: await greedy(b, 'second'), [PULLED]: await greedy(b, PULLED), 'second:style': await greedy(b, 'second:style') }).to.deep.equal(before);
      expect((await api(b, 'POST', '/v1/completions', { model: CONFIGURED, prompt: 'x', max_tokens: 1 }, null)).status).to.equal(404);
      // A request naming no model goes to the kept default.
      expect((await api(b, 'POST', '/v1/completions', { prompt: 'Once', max_tokens: 8, temperature: 0, ignore_eos: true }, null)).body.model).to.equal('second');
      // Changes go on being kept: make the pulled model the default.
      expect((await api(b, 'POST', `/v1/admin/models/${encodeURIComponent(PULLED)}/default`, undefined, null)).status).to.equal(200);
      expect((JSON.parse(readFileSync(statePath, 'utf8')) as { default: string }).default).to.equal(PULLED);
      // An adapter unloaded at runtime is no longer kept (the API answered after the write).
      expect((await api(b, 'DELETE', '/v1/admin/adapters/style', undefined, null)).status).to.equal(200);
      expect((JSON.parse(readFileSync(statePath, 'utf8')) as { adapters: unknown[] }).adapters).to.deep.equal([]);
    } finally {
      await b.stop();
    }
  });

  it('a state file that does not parse or has the wrong shape stops start-up, naming the file', async () => {
    for (const [text, why] of [
      ['{"version": 1, "loaded": [', 'is not JSON'],
      ['{"version": 2, "loaded": [], "unloaded": [], "default": null}', 'has version 2, expected 1'],
      ['{"version": 1, "loaded": [{"id": "x"}], "unloaded": [], "default": null}', 'loaded[0] needs exactly one of path and model'],
    ] as const) {
      writeFileSync(statePath, text);
      let failure = '';
      try {
        const s = await startServer(env);
        await s.stop();
      } catch (err) {
        failure = String(err);
      }
      expect(failure, text).to.match(/server exited with 1 before listening/);
      expect(failure, text).to.include(`models state file ${statePath} (server.models_state_path, INFERFLUX_MODELS_STATE) ${why}`);
      expect(failure, text).to.include('fix it, or remove it to start from the configured models');
    }
  });
});
