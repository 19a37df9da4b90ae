/**
 * The model registry's state machine, driven step by step with a host whose start and stop the
 * test resolves (no workers, no llama.cpp; the GGUF files are the real generated tiny models, so
 * the path and GGUF checks run for real):
 *
 *   load -> loading -> ready -> unloading -> (gone);  loading -> failed -> (gone) / loaded again
 *
 * plus leases and draining, the refusals (duplicate, bad id, default, still loading, over budget,
 * not pulled) and the models-state file's snapshot, parser and replay.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelEntry } from '../../src/config/types.js';
import { InferFluxError } from '../../src/errors.js';
import { ModelRegistry, type ModelHost, type RegistryChange } from '../../src/registry/model-registry.js';
import { AdapterRegistry } from '../../src/registry/adapter-registry.js';
import { EMPTY_STATE, ModelStateError, parseModelState, restoreAdapters, restoreModelState, snapshotOf } from '../../src/registry/model-state.js';
import { ensureModel } from '../../src/runtime/gguf/generate.js';
import { generateLora } from '../../src/runtime/gguf/lora.js';
import { readGgufHeader } from '../../src/runtime/gguf/reader.js';
import { ModelStore } from '../../src/runtime/models/model-store.js';

interface Deferred {
  resolve(): void;
  reject(err: Error): void;
}

/** A host whose every start/stop waits for the test (or completes at once with `auto`). */
class StepHost implements ModelHost {
  readonly calls: string[] = [];
  readonly pending = new Map<string, Deferred>();
  auto = false;
  failures = new Map<string, string>();

  private wait(key: string): Promise<void> {
    this.calls.push(key);
    if (this.auto) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.pending.set(key, { resolve, reject }));
  }
  startModel(m: ModelEntry): Promise<void> {
    return this.wait(`start ${m.id}`);
  }
  stopModel(m: ModelEntry): Promise<void> {
    return this.wait(`stop ${m.id}`);
  }
  startupFailure(id: string): string | null {
    return this.failures.get(id) ?? null;
  }
  finish(key: string, err?: Error): void {
    const d = this.pending.get(key);
    if (!d) throw new Error(`nothing pending for ${key} (calls: ${this.calls.join(', ')})`);
    this.pending.delete(key);
    if (err) d.reject(err);
    else d.resolve();
  }
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof InferFluxError) return err.code;
    throw err;
  }
  throw new Error('expected an InferFluxError');
}

const tick = () => new Promise((r) => setImmediate(r));

/** Waits (bounded) until the host has been asked for `key`: the registry's file checks are async. */
async function asked(host: StepHost, key: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!host.pending.has(key)) {
    if (Date.now() > end) throw new Error(`the host was not asked for ${key} within 5 s (calls: ${host.calls.join(', ')})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('model registry state machine (stepped host)', function () {
  this.timeout(30_000);
  let dir: string;
  let a: string;
  let b: string;
  let host: StepHost;
  let reg: ModelRegistry;
  let changes: string[];

  const make = (budget = 1e12) => {
    host = new StepHost();
    reg = new ModelRegistry({ host, modelsDir: '', pulledDir: join(dir, 'pulled'), memoryBudgetBytes: budget, shape: { workers: 1, contextSize: 512, sequences: 2, hostCacheBytes: 0 } });
    changes = [];
    reg.on('change', (c: RegistryChange) => changes.push(`${c.kind} ${c.id}`));
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-registry-'));
    a = (await ensureModel('tiny', join(dir, 'a.gguf'), 11)).path;
    b = (await ensureModel('tiny', join(dir, 'b.gguf'), 12)).path;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => make());

  it('loading -> ready: refuses requests while loading, serves once the host is up, becomes the default when there is none', async () => {
    const loading = reg.load({ id: 'a', path: a });
    await asked(host, 'start a');
    expect(reg.get('a')?.state).to.equal('loading');
    expect(host.calls).to.deep.equal(['start a']);
    const early = (() => {
      try {
        reg.resolve('a');
      } catch (err) {
        return err as InferFluxError;
      }
      return null;
    })();
    expect([early?.code, early?.retryAfter]).to.deep.equal(['model_not_loaded', 1]);
    expect(await codeOf(reg.load({ id: 'a', path: b }))).to.equal('model_exists');
    expect(await codeOf(() => reg.setDefault('a'))).to.equal('model_not_ready');
    expect(await codeOf(() => reg.unload('a'))).to.equal('model_not_ready');
    host.finish('start a');
    const m = await loading;
    expect([m.state, m.isDefault, m.source, m.pulled, m.error]).to.deep.equal(['ready', true, 'admin', null, null]);
    expect(reg.resolve(undefined).id).to.equal('a');
    expect(changes).to.deep.equal([`loading a`, 'ready a', 'default a']);
  });

  it('ready -> unloading -> gone: new requests 503 at once, the host stops only after the last lease, then 404', async () => {
    host.auto = true;
    await reg.load({ id: 'a', path: a });
    await reg.load({ id: 'b', path: b });
    host.auto = false;
    const lease1 = reg.acquire('b');
    const lease2 = reg.acquire('b');
    expect(reg.get('b')!.inflight).to.equal(2);
    const unloading = reg.unload('b');
    expect(reg.unload('b')).to.equal(unloading); // a second call joins the first
    expect(reg.get('b')!.state).to.equal('unloading');
    expect(await codeOf(() => reg.acquire('b'))).to.equal('model_unloading');
    lease1.release();
    lease1.release(); // idempotent: the count drops once
    await tick();
    expect(reg.get('b')!.inflight).to.equal(1);
    expect(host.calls).to.deep.equal(['start a', 'start b']); // still draining
    lease2.release();
    await asked(host, 'stop b');
    expect(host.calls).to.deep.equal(['start a', 'start b', 'stop b']);
    expect(reg.get('b')!.state).to.equal('unloading');
    host.finish('stop b');
    await unloading;
    expect(reg.get('b')).to.equal(undefined);
    expect(await codeOf(() => reg.resolve('b'))).to.equal('model_not_found');
    expect(changes.slice(-2)).to.deep.equal(['unloading b', 'unloaded b']);
  });

  it('loading -> failed: the load rejects with the reason, the entry says why, it can be loaded again or unloaded', async () => {
    const loading = reg.load({ id: 'a', path: a });
    await asked(host, 'start a');
    host.finish('start a', new Error('no sequences'));
    expect(await codeOf(loading)).to.equal('invalid_model_file');
    const m = reg.get('a')!;
    expect([m.state, m.error, m.isDefault]).to.deep.equal(['failed', 'no sequences', false]);
    expect(await codeOf(() => reg.resolve('a'))).to.equal('model_not_loaded');
    expect(reg.memoryUsed).to.equal(0); // a failed model holds nothing
    // Loading the id again replaces the failed entry.
    host.auto = true;
    const again = await reg.load({ id: 'a', path: b });
    expect([again.state, again.path, again.serial > m.serial]).to.deep.equal(['ready', b, true]);
    // A failed model unloads without waiting for anything.
    host.auto = false;
    const c = reg.load({ id: 'c', path: a });
    await asked(host, 'start c');
    host.finish('start c', new Error('boom'));
    await codeOf(c);
    const gone = reg.unload('c');
    await asked(host, 'stop c');
    host.finish('stop c');
    await gone;
    expect(reg.get('c')).to.equal(undefined);
    expect(changes).to.include.members(['failed a', 'failed c', 'unloaded c']);
  });

  it('refusals: bad id, path and model both or neither, id missing for a path, the default, over budget (nothing registered)', async () => {
    expect(await codeOf(reg.load({ id: 'bad id!', path: a }))).to.equal('invalid_request');
    expect(await codeOf(reg.load({ id: 'x', path: a, model: 'acme/x:Q8_0' }))).to.equal('invalid_request');
    expect(await codeOf(reg.load({ id: 'x' }))).to.equal('invalid_request');
    expect(await codeOf(reg.load({ path: a }))).to.equal('invalid_request');
    expect(await codeOf(reg.load({ id: 'x', path: join(dir, 'missing.gguf') }))).to.equal('invalid_model_path');
    host.auto = true;
    await reg.load({ id: 'a', path: a });
    expect(await codeOf(() => reg.unload('a'))).to.equal('model_is_default');
    make(1); // a one-byte budget
    expect(await codeOf(reg.load({ id: 'a', path: a }))).to.equal('insufficient_memory');
    expect(reg.list()).to.deep.equal([]);
    expect(host.calls).to.deep.equal([]);
    expect(changes).to.deep.equal([]);
  });

  it('a pulled model loads by name from the models directory; one not pulled is model_not_found', async () => {
    const store = new ModelStore(join(dir, 'pulled'));
    await store.ensureDirs();
    const bytes = readFileSync(b);
    const digest = createHash('sha256').update(bytes).digest('hex');
    copyFileSync(b, store.blobPath(digest));
    await store.put({ name: 'acme/b-GGUF:Q8_0', source: 'acme/b-GGUF:Q8_0', url: 'https://hub.example/x', quant: 'Q8_0', sha256: digest, size: bytes.length, pulled_at: '2026-01-01T00:00:00Z', architecture: 'llama' });
    host.auto = true;
    const m = await reg.load({ model: 'acme/b-GGUF:Q8_0' });
    expect([m.id, m.pulled, m.path]).to.deep.equal(['acme/b-GGUF:Q8_0', 'acme/b-GGUF:Q8_0', store.blobPath(digest)]);
    expect(await codeOf(reg.load({ model: 'acme/nope:Q8_0' }))).to.equal('model_not_found');
    expect(await codeOf(reg.load({ model: '../escape' }))).to.equal('invalid_request');
  });

  it('configured models are adopted ready, or failed with the reason the host gives', async () => {
    host.failures.set('b', 'worker died at start');
    const entry = (id: string, path: string, dflt: boolean): ModelEntry => ({ id, path, default: dflt, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' });
    await reg.adoptConfigured([entry('a', a, true), entry('b', b, false)]);
    expect(reg.list().map((m) => [m.id, m.state, m.isDefault, m.source, m.error])).to.deep.equal([
      ['a', 'ready', true, 'config', null],
      ['b', 'failed', false, 'config', 'worker died at start'],
    ]);
  });

  it('models state: the snapshot is relative to the configured ids, the parser names what is wrong, the replay restores the set', async () => {
    host.auto = true;
    const entry = (id: string, path: string): ModelEntry => ({ id, path, default: true, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' });
    await reg.adoptConfigured([entry('cfg', a)]);
    await reg.load({ id: 'rt', path: b, default: true });
    await reg.unload('cfg');
    const snap = snapshotOf(reg, new AdapterRegistry({ loadAdapter: async () => undefined }, ''), ['cfg']);
    expect(snap).to.deep.equal({ loaded: [{ id: 'rt', path: b }], unloaded: ['cfg'], default: 'rt', adapters: [] });

    // Replayed on a fresh registry over the same configured model.
    make();
    host.auto = true;
    await reg.adoptConfigured([entry('cfg', a)]);
    const warnings: string[] = [];
    const log = Object.assign((_: string) => undefined, { warn: (m: string) => void warnings.push(m) });
    await restoreModelState(reg, { ...snap, loaded: [...snap.loaded, { id: 'gone', path: join(dir, 'deleted.gguf') }, { id: 'cfg', path: a }] }, log);
    expect(reg.list().map((m) => [m.id, m.isDefault])).to.deep.equal([['rt', true]]);
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.contain("could not load 'gone' again");
    expect(warnings[1]).to.contain("'cfg' is now a configured model");
    await restoreModelState(reg, EMPTY_STATE, log); // nothing to do

    const bad = (text: string) => {
      try {
        parseModelState('/s.json', text);
      } catch (err) {
        expect(err).to.be.instanceOf(ModelStateError);
        return (err as Error).message;
      }
      throw new Error('expected a ModelStateError');
    };
    expect(bad('[')).to.match(/^models state file \/s\.json \(server\.models_state_path, INFERFLUX_MODELS_STATE\) is not JSON/);
    expect(bad('[]')).to.contain('is not a JSON object');
    expect(bad('{"version":1,"loaded":{},"unloaded":[],"default":null}')).to.contain('has no loaded list');
    expect(bad('{"version":1,"loaded":[],"unloaded":[1],"default":null}')).to.contain('has no unloaded list of ids');
    expect(bad('{"version":1,"loaded":[],"unloaded":[],"default":7}')).to.contain('default must be a model id or null');
    expect(bad('{"version":1,"loaded":[{"id":"x","path":"/a","model":"b"}],"unloaded":[],"default":null}')).to.contain('loaded[0] needs exactly one of path and model');
    expect(bad('{"version":1,"loaded":[],"unloaded":[],"default":null,"adapters":{}}')).to.contain('adapters must be a list');
    expect(bad('{"version":1,"loaded":[],"unloaded":[],"default":null,"adapters":[{"id":"x","model":"m"}]}')).to.contain('adapters[0] needs an id, a model and a path');
    expect(bad('{"version":1,"loaded":[],"unloaded":[],"default":null,"adapters":[{"id":"x","model":"m","path":"/a","scale":"1"}]}')).to.contain('adapters[0] needs a numeric scale');
    expect(bad('{"version":1,"loaded":[],"unloaded":[],"default":null,"adapters":[{"id":"x","model":"m","path":"/a","scale":1,"sha256":"ab"}]}')).to.contain("adapters[0] needs the file's sha256");
    expect(parseModelState('/s.json', JSON.stringify({ version: 1, updated_at: 'x', loaded: [{ id: 'p', model: 'a/b:Q8_0' }], unloaded: [], default: null }))).to.deep.equal({
      loaded: [{ id: 'p', model: 'a/b:Q8_0' }],
      unloaded: [],
      default: null,
      adapters: [], // written before adapters were kept
    });
  });

  it('models state: ready adapters are kept with their content hash and replayed; a changed file or a missing base is skipped with a warning', async () => {
    host.auto = true;
    const entry = (id: string, path: string): ModelEntry => ({ id, path, default: id === 'cfg', backend: 'cpu', generateIfMissing: false, embeddings: 'auto' });
    await reg.adoptConfigured([entry('cfg', a), entry('other', b)]);
    const lora = join(dir, 'style.gguf');
    const lora2 = join(dir, 'tone.gguf');
    const header = await readGgufHeader(a);
    await generateLora({ base: header, seed: 5, outPath: lora });
    await generateLora({ base: header, seed: 6, outPath: lora2 });
    const engine: string[] = [];
    const adapters = new AdapterRegistry({ loadAdapter: async (model, f) => void engine.push(`${model} ${f.path}`) }, '');
    await adapters.load({ model: 'cfg', id: 'style', path: lora, scale: 0.5 }, reg.lookup('cfg'));
    await adapters.load({ model: 'cfg', id: 'tone', path: lora2, scale: 1 }, reg.lookup('cfg'));
    const snap = snapshotOf(reg, adapters, ['cfg', 'other']);
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(snap.adapters).to.deep.equal([
      { id: 'style', model: 'cfg', path: lora, scale: 0.5, sha256: sha(lora) },
      { id: 'tone', model: 'cfg', path: lora2, scale: 1, sha256: sha(lora2) },
    ]);
    // Survives the file's JSON round trip.
    expect(parseModelState('/s.json', JSON.stringify({ version: 1, ...snap })).adapters).to.deep.equal(snap.adapters);

    // Replayed onto a fresh pair of registries: 'tone' changed on disk, 'ghost' names no served model.
    make();
    host.auto = true;
    await reg.adoptConfigured([entry('cfg', a), entry('other', b)]);
    await generateLora({ base: header, seed: 7, outPath: lora2 });
    const fresh = new AdapterRegistry({ loadAdapter: async (model, f) => void engine.push(`${model} ${f.path}`) }, '');
    const warnings: string[] = [];
    const log = Object.assign((_: string) => undefined, { warn: (m: string) => void warnings.push(m) });
    engine.length = 0;
    await restoreAdapters(fresh, reg, [...snap.adapters, { id: 'ghost', model: 'gone', path: lora, scale: 1, sha256: sha(lora) }], log);
    expect(fresh.list().map((x) => [x.id, x.model, x.scale, x.state])).to.deep.equal([['style', 'cfg', 0.5, 'ready']]);
    expect(engine).to.deep.equal([`cfg ${lora}`]);
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.contain("could not load adapter 'tone' again").and.contain('no longer has the content');
    expect(warnings[1]).to.contain("adapter 'ghost' is skipped: its model 'gone' is not served");
  });
});
