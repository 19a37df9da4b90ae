#!/usr/bin/env node
/**
 * `make-model --shape tiny|bench --out FILE [--seed N]`: writes a random-weight llama GGUF for
 * tests and benchmarks. `make-model --lora --base MODEL --out FILE [--seed N] [--rank R] [--alpha A]`
 * writes a LoRA adapter GGUF for that base model. Exit code 2 on bad arguments (usage error), 1 if
 * generation fails.
 */
import { parseArgs } from 'node:util';
import { generateModel } from '../runtime/gguf/generate.js';
import { generateLora } from '../runtime/gguf/lora.js';
import { validateGguf } from '../runtime/gguf/reader.js';
import { SHAPES, isShapeName } from '../runtime/gguf/shapes.js';

const USAGE = `usage: make-model --shape ${Object.keys(SHAPES).join('|')} --out FILE [--seed N]
       make-model --lora --base MODEL.gguf --out FILE [--seed N] [--rank R] [--alpha A]
  --shape   model shape to generate
  --lora    write a LoRA adapter (general.type=adapter) for --base instead of a model
  --base    the base model the adapter is for (its tensors give the adapter's shapes)
  --rank    LoRA rank, 1..64 (default 8)
  --alpha   adapter.lora.alpha (default 2 x rank: effective scale 2 at request scale 1)
  --out     output path (written atomically)
  --seed    u32 weight seed (default 0); the same seed gives a byte-identical file`;

function usage(problem: string): never {
  process.stderr.write(`make-model: ${problem}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { shape?: string; out?: string; seed?: string; help?: boolean; lora?: boolean; base?: string; rank?: string; alpha?: string };
  try {
    ({ values } = parseArgs({
      options: {
        shape: { type: 'string' },
        out: { type: 'string' },
        seed: { type: 'string' },
        lora: { type: 'boolean' },
        base: { type: 'string' },
        rank: { type: 'string' },
        alpha: { type: 'string' },
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
  if (values.out === undefined || values.out === '') usage('--out is required');
  const seedText = values.seed ?? '0';
  const seed = Number(seedText);
  if (!/^\d+$/.test(seedText) || seed > 0xffffffff) usage(`--seed must be an integer in 0..4294967295, got "${seedText}"`);
  if (values.lora) return makeLora(values, seed, values.out);
  if (values.base !== undefined || values.rank !== undefined || values.alpha !== undefined) usage('--base, --rank and --alpha go with --lora');
  if (values.shape === undefined || !isShapeName(values.shape)) usage(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);

  const started = performance.now();
  const m = await generateModel({ shape: values.shape, seed, outPath: values.out });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `path: ${m.path}\nsize: ${m.bytes} bytes (${(m.bytes / 1048576).toFixed(1)} MiB)\n` +
      `params: ${m.parameters}\nsha256: ${m.sha256}\ntime: ${seconds.toFixed(2)} s\n`,
  );
}

async function makeLora(values: { shape?: string; base?: string; rank?: string; alpha?: string }, seed: number, out: string): Promise<void> {
  if (values.shape !== undefined) usage('--shape does not go with --lora (the adapter follows --base)');
  if (values.base === undefined || values.base === '') usage('--lora needs --base MODEL.gguf');
  const rank = Number(values.rank ?? '8');
  if (!/^\d+$/.test(values.rank ?? '8') || rank < 1 || rank > 64) usage(`--rank must be an integer in 1..64, got "${values.rank}"`);
  const alpha = values.alpha === undefined ? undefined : Number(values.alpha);
  if (alpha !== undefined && (values.alpha!.trim() === '' || !Number.isFinite(alpha))) usage(`--alpha must be a number, got "${values.alpha}"`);
  const started = performance.now();
  const base = await validateGguf(values.base);
  const m = await generateLora({ base, seed, rank, alpha, outPath: out });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `path: ${m.path}\nsize: ${m.bytes} bytes\ntensors: ${m.tensors}\nrank: ${m.rank}\nalpha: ${m.alpha}\n` +
      `sha256: ${m.sha256}\ntime: ${seconds.toFixed(2)} s\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`make-model: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
