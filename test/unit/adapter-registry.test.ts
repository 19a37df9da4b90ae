/**
 * The adapter registry's state machine with a host the test controls: loads are checked against
 * the base before the host sees them, a host refusal leaves nothing behind, an unload refuses new
 * leases at once and resolves only when the running ones end.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferFluxError } from '../../src/errors.js';
import { generateModel } from '../../src/runtime/gguf/generate.js';
import { generateLora } from '../../src/runtime/gguf/lora.js';
import { readGgufHeader } from '../../src/runtime/gguf/reader.js';
import { AdapterRegistry } from '../../src/registry/adapter-registry.js';
import type { RegisteredModel } from '../../src/registry/model-registry.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as InferFluxError).code;
  }
  return 'ok';
}

describe('adapter registry', () => {
  let dir: string;
  let base: RegisteredModel;
  const loads: string[] = [];
  let refuse = false;
  const host = {
    loadAdapter: async (_model: string, a: { path: string }) => {
      if (refuse) throw new Error('Failed to initialize LoRA adapter');
      loads.push(a.path);
    },
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-adapter-reg-'));
    await generateModel({ shape: 'tiny', seed: 0, outPath: join(dir, 'tiny.gguf') });
    await generateLora({ base: await readGgufHeader(join(dir, 'tiny.gguf')), seed: 3, outPath: join(dir, 'a.gguf') });
    base = { id: 'tiny', path: join(dir, 'tiny.gguf'), state: 'ready' } as RegisteredModel;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads, leases, drains on unload (503 meanwhile, 404 after)', async () => {
    const reg = new AdapterRegistry(host, dir);
    const changes: string[] = [];
    reg.onChange((c) => changes.push(`${c.kind}:${c.id}`));
    const a = await reg.load({ model: 'tiny', id: 'a', path: 'a.gguf', scale: 0.5 }, base);
    expect(a).to.deep.include({ id: 'a', model: 'tiny', path: join(dir, 'a.gguf'), scale: 0.5, rank: 8, alpha: 16, targets: 7, state: 'ready' });
    expect(a.key).to.equal(`${a.sha256.slice(0, 16)}x0.5`);
    expect(loads).to.deep.equal([join(dir, 'a.gguf')]);
    const lease = reg.acquire('tiny', 'a');
    expect(code(() => reg.acquire('other', 'a'))).to.equal('adapter_not_found');
    let gone = false;
    const unloading = reg.unload('a').then(() => (gone = true));
    expect(code(() => reg.acquire('tiny', 'a'))).to.equal('adapter_unloading');
    await new Promise((r) => setTimeout(r, 20));
    expect(gone, 'waits for the running request').to.equal(false);
    lease.release();
    lease.release();
    await unloading;
    expect(code(() => reg.acquire('tiny', 'a'))).to.equal('adapter_not_found');
    expect(changes).to.deep.equal(['loaded:a', 'unloading:a', 'unloaded:a']);
  });

  it('refuses bad ids, scales, duplicates, paths outside the directory and models; a host refusal leaves nothing', async () => {
    const reg = new AdapterRegistry(host, dir);
    const err = async (p: Promise<unknown>) => p.then(() => 'ok', (e: InferFluxError) => `${e.status} ${e.code}`);
    expect(await err(reg.load({ model: 'tiny', id: 'a:b', path: 'a.gguf', scale: 1 }, base))).to.equal('400 invalid_request');
    expect(await err(reg.load({ model: 'tiny', id: 'a', path: 'a.gguf', scale: Number.NaN }, base))).to.equal('400 invalid_request');
    expect(await err(reg.load({ model: 'tiny', id: 'a', path: '/etc/hostname', scale: 1 }, base))).to.equal('400 invalid_model_path');
    expect(await err(reg.load({ model: 'tiny', id: 'a', path: 'tiny.gguf', scale: 1 }, base))).to.equal('422 invalid_adapter_file');
    refuse = true;
    expect(await err(reg.load({ model: 'tiny', id: 'a', path: 'a.gguf', scale: 1 }, base))).to.equal('422 invalid_adapter_file');
    refuse = false;
    expect(reg.list()).to.deep.equal([]);
    await reg.load({ model: 'tiny', id: 'a', path: 'a.gguf', scale: 1 }, base);
    expect(await err(reg.load({ model: 'tiny', id: 'a', path: 'a.gguf', scale: 1 }, base))).to.equal('409 adapter_exists');
    expect(await err(reg.load({ model: 'tiny', id: 'b', path: 'a.gguf', scale: 1 }, { ...base, state: 'unloading' }))).to.equal('409 model_not_ready');
    await reg.unloadAllOf('tiny');
    expect(reg.list()).to.deep.equal([]);
  });
});
