/**
 * The persistent llama.cpp thread pool (src/runtime/llama/threadpool): loaded before
 * node-llama-cpp, it attaches a pool to a multi-thread context as soon as the BatchContext opens
 * it, frees it with the context, and changes no token of a greedy decode. Each mode runs in its
 * own process, as the pool binds llama.cpp's calls process-wide.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generateModel } from '../../src/runtime/gguf/generate.js';
import { THREADPOOL_ADDON, compilePersistentThreadpool } from '../../src/runtime/llama/threadpool/addon.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('../helpers/threadpool-child.ts', import.meta.url));

interface ChildReport {
  opened: { contexts: number; threads: number; poolsMade: number; error?: string } | null;
  disposed: { contexts: number; threads: number; poolsMade: number } | null;
  tokens: number[];
  draws: { plain: number; banned: number; nativeBanned: number }[];
}

describe('persistent llama.cpp thread pool', function () {
  this.timeout(120_000);
  let dir: string;
  let modelPath: string;

  before(async () => {
    // npm test builds first; compiling again here is a no-op then, and covers a bare mocha run.
    const built = compilePersistentThreadpool();
    if (!built.built) throw new Error(`the thread pool addon does not build here: ${built.reason}`);
    dir = mkdtempSync(path.join(tmpdir(), 'ifx-threadpool-'));
    modelPath = (await generateModel({ shape: 'tiny', seed: 11, outPath: path.join(dir, 'tiny.gguf') })).path;
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  async function child(mode: 'persistent' | 'per_step'): Promise<ChildReport> {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CHILD, modelPath, mode], { encoding: 'utf8' });
    return JSON.parse(stdout.trim().split('\n').pop()!) as ChildReport;
  }

  it('is compiled into dist/native', () => {
    expect(path.relative(fileURLToPath(new URL('../../', import.meta.url)), THREADPOOL_ADDON)).to.equal(path.join('dist', 'native', 'persistent-threadpool.node'));
  });

  it('attaches a 2-thread pool when the context opens, frees it with the context, and decodes the same tokens', async () => {
    const [persistent, perStep] = [await child('persistent'), await child('per_step')];
    expect(persistent.opened).to.deep.equal({ contexts: 1, threads: 2, poolsMade: 1 });
    expect(persistent.disposed).to.deep.equal({ contexts: 0, threads: 0, poolsMade: 1 });
    expect(perStep.opened).to.equal(null);
    expect(persistent.tokens).to.have.length(16);
    expect(persistent.tokens).to.deep.equal(perStep.tokens);
  });

  it("draws greedy tokens on the engine thread exactly as llama.cpp's greedy sampler, bans included; not without the pool", async () => {
    const [persistent, perStep] = [await child('persistent'), await child('per_step')];
    expect(persistent.draws).to.have.length(16);
    expect(persistent.draws.map((d) => d.plain)).to.deep.equal(persistent.tokens);
    expect(persistent.draws.map((d) => d.banned)).to.deep.equal(persistent.draws.map((d) => d.nativeBanned));
    // The ban moved every draw: the test can tell a skipped token from an ignored list.
    for (let i = 0; i < 16; i++) expect(persistent.draws[i]!.banned).to.not.equal(persistent.tokens[i]);
    // Without the library interposing llama_n_threads the context is unknown: the engine samples natively.
    expect(perStep.draws.map((d) => [d.plain, d.banned])).to.deep.equal(Array.from({ length: 16 }, () => [-2, -2]));
  });
});
