/**
 * `npm run bench:prompt-steps`: what one llama.cpp step costs when it carries prompt chunks of
 * several sequences, by depth (the KV cells each sequence already holds), on the bench model,
 * in-process through the engine's own batch adapter. The evidence behind `SOLO_PREFILL_DEPTH`
 * (src/actors/engine/core.ts): with flash attention on (llama.cpp's default on a CPU) a
 * multi-token chunk costs its sequence a pass over all its cells almost whatever its length, so
 * deep chunks of several prompts in one step cost what as many steps do.
 *
 *   npm run -s build && node --import tsx bench/prompt-steps.ts [--threads 1] [--flash on|off] [--rounds 3]
 *
 * Not a comparison with another system (nothing here is a performance claim about InferFlux):
 * it measures llama.cpp's own behaviour under the shapes the scheduler chooses between, so a
 * llama.cpp upgrade that changes it shows here. Bounded: rounds x depths x 5 shapes, one step each.
 */
import { parseArgs } from 'node:util';
import { LlamaLogLevel, getLlama } from 'node-llama-cpp';
import { BatchContext, type BatchItem } from '../src/runtime/llama/batch-adapter.js';
import { BENCH_MODEL, benchModel, provenance, runBench, say } from './server.js';

const DEPTHS = [8, 300, 760, 1500];
/** [label, per sequence: tokens in the step] — sequences 0.. in order, so llama.cpp's micro-batches stay whole. */
const SHAPES: [label: string, tokens: number[]][] = [
  ['1 seq x 56', [56]],
  ['1 seq x 181', [181]],
  ['3 seqs x 60', [60, 60, 61]],
  ['3 x 60 + 3 decoding', [60, 60, 61, 1, 1, 1]],
  ['8 decoding', [1, 1, 1, 1, 1, 1, 1, 1]],
];

/** Deterministic token ids inside the bench vocabulary (32000), away from the special ones. */
const tokens = (n: number, salt: number): Uint32Array => Uint32Array.from({ length: n }, (_, i) => 100 + ((i * 7919 + salt * 104729) % 30000));

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, flash: { type: 'string', default: 'on' }, rounds: { type: 'string', default: '3' } } });
  const threads = Number(values.threads);
  const rounds = Number(values.rounds);
  if (values.flash !== 'on' && values.flash !== 'off') throw new Error('--flash must be on or off');
  say(`model: ${await benchModel()}`);
  say(provenance());
  say(`threads ${threads}, flash attention ${values.flash}, ${rounds} round(s); ms per step, median of the rounds`);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: BENCH_MODEL });
  const context = await model.createContext({ contextSize: 2048, sequences: 16, batchSize: 512, threads, flashAttention: values.flash === 'on' });
  const batch = new BatchContext(llama, model, context);
  try {
    say(`${'depth'.padStart(5)} | ${SHAPES.map(([l]) => l.padStart(l.length)).join(' | ')}`);
    for (const depth of DEPTHS) {
      for (let seq = 0; seq < 8; seq++) {
        batch.clearSequence(seq);
        for (let p = 0; p < depth; p += 256) {
          const n = Math.min(256, depth - p);
          await batch.decode([{ sequenceId: seq, position: p, tokens: tokens(n, seq * 10_000 + p), wantLogits: false }]);
        }
      }
      const times: number[][] = SHAPES.map(() => []);
      for (let r = 0; r < rounds; r++) {
        for (const [k, [, shape]] of SHAPES.entries()) {
          const items: BatchItem[] = shape.map((n, seq) => ({ sequenceId: seq, position: depth, tokens: tokens(n, seq + r * 100 + k), wantLogits: true }));
          const t0 = performance.now();
          await batch.decode(items);
          times[k]!.push(performance.now() - t0);
          // Back to `depth` cells, so every shape and round starts from the same state.
          for (let seq = 0; seq < shape.length; seq++) batch.trimSequence(seq, depth);
        }
      }
      const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
      say(`${String(depth).padStart(5)} | ${SHAPES.map(([l], k) => median(times[k]!).toFixed(0).padStart(l.length)).join(' | ')}`);
    }
  } finally {
    batch.dispose();
    await context.dispose();
    await model.dispose();
  }
  return 0;
}

runBench(main);
