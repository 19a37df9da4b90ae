/**
 * GGUF fuzz: seeded mutations of the generated tiny model (counts, lengths, types, offsets,
 * hyperparameters, vocabulary, tensor infos, raw header bytes), each validated and, only when
 * accepted, loaded by real llama.cpp (model + context) in a child process (`dist/cli/check-model.js`).
 * Every case must end as a clean refusal (our validation or llama.cpp's own error) or a clean load;
 * a child killed by a signal or exiting non-zero is a crash, and there must be none.
 *
 * Reproduce a failure with the printed seed: INFERFLUX_FUZZ_SEED=<seed> [INFERFLUX_FUZZ_CASES=n].
 * One child loads files in turn (getLlama costs ~1 s per process); after a crash a new child
 * continues with the next file, so one crash never hides another.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mutateAdapterCase, mutateCase } from '../helpers/gguf-mutate.js';
import { generateLora } from '../../src/runtime/gguf/lora.js';
import { readGgufHeader } from '../../src/runtime/gguf/reader.js';
import { serialize, splitGguf } from '../helpers/gguf-mutate.js';
import { startServer, tinyModel } from '../helpers/server.js';

const CHECK = new URL('../../dist/cli/check-model.js', import.meta.url).pathname;
const SEED = Number(process.env.INFERFLUX_FUZZ_SEED ?? 20261205);
const CASES = Number(process.env.INFERFLUX_FUZZ_CASES ?? 150);
const ADAPTER_CASES = Number(process.env.INFERFLUX_FUZZ_ADAPTER_CASES ?? 80);

interface Outcome {
  file: string;
  accepted: boolean;
  loaded?: boolean;
  loading?: boolean;
  reason?: string;
  message?: string;
}

/** Runs check-model over `files` until all are handled; a file whose load never reported back crashed. */
async function runAll(files: string[], args: string[] = []): Promise<{ outcomes: Map<string, Outcome>; crashes: { file: string; exit: string }[] }> {
  const outcomes = new Map<string, Outcome>();
  const crashes: { file: string; exit: string }[] = [];
  let rest = files;
  while (rest.length > 0) {
    const child = spawn(process.execPath, [CHECK, '--load', ...args, ...rest], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    let last: Outcome | null = null;
    for (const l of out.split('\n').filter((x) => x !== '')) {
      last = JSON.parse(l) as Outcome;
      if (!last.loading) outcomes.set(last.file, last);
    }
    if (code === 0) break;
    // The child died: the file it was loading (or the next unreported one) is the crash.
    const culprit = last?.loading ? last.file : rest.find((f) => !outcomes.has(f))!;
    crashes.push({ file: culprit, exit: signal ? `signal ${signal}` : `exit ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}` });
    outcomes.set(culprit, { file: culprit, accepted: true, loaded: false, message: 'CRASH' });
    rest = rest.slice(rest.indexOf(culprit) + 1);
  }
  return { outcomes, crashes };
}

describe('GGUF fuzz: validate, then load in a child process', function () {
  this.timeout(240_000);

  it(`${CASES} seeded mutations of the tiny model: every one refused cleanly or loaded, none aborts`, async () => {
    const base = readFileSync(await tinyModel());
    const dir = mkdtempSync(join(tmpdir(), 'ifx-fuzz-'));
    try {
      const cases = Array.from({ length: CASES }, (_, i) => {
        const { bytes, what } = mutateCase(base, SEED, i);
        const file = join(dir, `case-${String(i).padStart(3, '0')}.gguf`);
        writeFileSync(file, bytes);
        return { file, what };
      });
      const startedAt = Date.now();
      const { outcomes, crashes } = await runAll(cases.map((c) => c.file));
      const seconds = (Date.now() - startedAt) / 1000;
      const all = cases.map((c) => ({ ...c, out: outcomes.get(c.file)! }));
      const refused = all.filter((c) => !c.out.accepted).length;
      const loaded = all.filter((c) => c.out.loaded === true).length;
      const llamaRefused = all.filter((c) => c.out.accepted && c.out.loaded === false && c.out.message !== 'CRASH').length;
      process.stdout.write(
        `      gguf fuzz seed ${SEED}: ${CASES} cases in ${seconds.toFixed(1)} s: crashes ${crashes.length}, ` +
          `refused by validation ${refused}, loaded ${loaded}, refused by llama.cpp ${llamaRefused}\n`,
      );
      for (const c of all.filter((x) => x.out.accepted && x.out.loaded === false && x.out.message !== 'CRASH')) {
        process.stdout.write(`        llama.cpp refused ${c.file.slice(-12)} (${c.what.join('; ')}): ${c.out.message}\n`);
      }
      const crashed = crashes.map((x) => ({ ...x, what: cases.find((c) => c.file === x.file)!.what }));
      expect(crashed, `seed ${SEED}`).to.deep.equal([]);
      expect(all.every((c) => c.out !== undefined)).to.equal(true);
      expect(all[0]!.out).to.deep.include({ accepted: true, loaded: true });
      expect(refused).to.be.greaterThan(CASES / 4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`${ADAPTER_CASES} seeded mutations of a LoRA adapter: each refused by the adapter checks or applied by llama.cpp, none aborts`, async () => {
    const model = await tinyModel();
    const dir = mkdtempSync(join(tmpdir(), 'ifx-fuzz-lora-'));
    try {
      await generateLora({ base: await readGgufHeader(model), seed: 7, outPath: join(dir, 'adapter.gguf') });
      const base = readFileSync(join(dir, 'adapter.gguf'));
      const cases = Array.from({ length: ADAPTER_CASES }, (_, i) => {
        const { bytes, what } = mutateAdapterCase(base, SEED, i);
        const file = join(dir, `lora-${String(i).padStart(3, '0')}.gguf`);
        writeFileSync(file, bytes);
        return { file, what };
      });
      const startedAt = Date.now();
      const { outcomes, crashes } = await runAll(cases.map((c) => c.file), ['--base', model]);
      const all = cases.map((c) => ({ ...c, out: outcomes.get(c.file)! }));
      const refused = all.filter((c) => !c.out.accepted).length;
      const loaded = all.filter((c) => c.out.loaded === true).length;
      const llamaRefused = all.filter((c) => c.out.accepted && c.out.loaded === false && c.out.message !== 'CRASH');
      process.stdout.write(
        `      lora fuzz seed ${SEED}: ${ADAPTER_CASES} cases in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: crashes ${crashes.length}, ` +
          `refused by validation ${refused}, applied ${loaded}, refused by llama.cpp ${llamaRefused.length}\n`,
      );
      for (const c of llamaRefused) process.stdout.write(`        llama.cpp refused ${c.file.slice(-12)} (${c.what.join('; ')}): ${c.out.message}\n`);
      const crashed = crashes.map((x) => ({ ...x, what: cases.find((c) => c.file === x.file)!.what }));
      expect(crashed, `seed ${SEED}`).to.deep.equal([]);
      expect(all.every((c) => c.out !== undefined)).to.equal(true);
      expect(all[0]!.out).to.deep.include({ accepted: true, loaded: true });
      expect(refused).to.be.greaterThan(ADAPTER_CASES / 4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the server refuses to start on a model with block_count 100000: exit 1 naming the file and the reason, not an abort', async () => {
    const g = splitGguf(readFileSync(await tinyModel()));
    const kv = g.kvs.find((k) => k.key === 'llama.block_count')!;
    kv.payload = Buffer.from(Uint32Array.of(100000).buffer);
    const dir = mkdtempSync(join(tmpdir(), 'ifx-badmodel-'));
    const file = join(dir, 'layers.gguf');
    writeFileSync(file, serialize(g));
    try {
      let error: Error | null = null;
      try {
        const server = await startServer({ INFERFLUX_MODEL_PATH: file });
        await server.stop();
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message.split('\n')[0]).to.equal('server exited with 1 before listening:');
      expect(error?.message).to.include(
        `failed to start: model 'layers': ${file} is not a valid GGUF file: invalid GGUF ${file}: llama.block_count is 100000, llama.cpp allows 1..512`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
