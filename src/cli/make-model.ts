#!/usr/bin/env node
/**
 * `make-model --shape tiny|bench --out FILE [--seed N]`: writes a random-weight llama GGUF for
 * tests and benchmarks. Exit code 2 on bad arguments (usage error), 1 if generation fails.
 */
import { parseArgs } from 'node:util';
import { generateModel } from '../runtime/gguf/generate.js';
import { SHAPES, isShapeName } from '../runtime/gguf/shapes.js';

const USAGE = `usage: make-model --shape ${Object.keys(SHAPES).join('|')} --out FILE [--seed N]
  --shape   model shape to generate
  --out     output path (written atomically)
  --seed    u32 weight seed (default 0); the same seed gives a byte-identical file`;

function usage(problem: string): never {
  process.stderr.write(`make-model: ${problem}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { shape?: string; out?: string; seed?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        shape: { type: 'string' },
        out: { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.shape === undefined || !isShapeName(values.shape)) usage(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
  if (values.out === undefined || values.out === '') usage('--out is required');
  const seedText = values.seed ?? '0';
  const seed = Number(seedText);
  if (!/^\d+$/.test(seedText) || seed > 0xffffffff) usage(`--seed must be an integer in 0..4294967295, got "${seedText}"`);

  const started = performance.now();
  const m = await generateModel({ shape: values.shape, seed, outPath: values.out });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `path: ${m.path}\nsize: ${m.bytes} bytes (${(m.bytes / 1048576).toFixed(1)} MiB)\n` +
      `params: ${m.parameters}\nsha256: ${m.sha256}\ntime: ${seconds.toFixed(2)} s\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`make-model: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
