/**
 * `npm run bench:grammar-sampler`: where a constrained token's time goes, below the server. One
 * engine (the bench model, one thread, one sequence) drives the same decode loop as the engine
 * worker through the batch adapter and times each step's `decode` and `sample` separately, for
 * no grammar and for the grammar bench's two schemas (bench/grammar.ts).
 *
 * For the constrained runs it also asks, at every step, whether the token the unconstrained
 * chain picks from the same logits would fit the grammar (a second sampler without the grammar,
 * then `canAccept`): node-llama-cpp's sampler tries that pick first and only when it does not
 * fit runs llama.cpp's grammar over the whole vocabulary and samples again (AddonSampler.cpp,
 * `sampleAndReleaseLock`). The report splits constrained sample time by that outcome.
 *
 * `<schema>+force` rows sample through node-llama-cpp's other path (grammar first, then the chain),
 * bypassing the adapter's bookkeeping: their state never completes, so they run all TOKENS steps.
 *
 * Bounded: a fixed number of tokens per run; no server, no network.
 */
import { performance } from 'node:perf_hooks';
import { LlamaLogLevel, getLlama } from 'node-llama-cpp';
import { compileOutputConstraint } from '../src/generation/structured-output.js';
import { BatchContext } from '../src/runtime/llama/batch-adapter.js';
import { BENCH_MODEL, benchModel, provenance, randomWords, runBench, say } from './server.js';
import { median } from './stats.js';

const TOKENS = Number(process.env.BENCH_SAMPLER_TOKENS ?? 96);
const RUNS = Number(process.env.BENCH_SAMPLER_RUNS ?? 3);
const SCHEMAS: Record<string, unknown> = {
  numbers: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 999 }, minItems: 24, maxItems: 24 },
  text: { type: 'object', properties: { text: { type: 'string', minLength: 150, maxLength: 200 } }, required: ['text'], additionalProperties: false },
};

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const ms = (x: number): string => x.toFixed(3).padStart(7);

async function main(): Promise<number> {
  say(`grammar sampler profile: ${provenance()}; node ${process.version}`);
  say(`model: ${await benchModel()}; ${TOKENS} tokens x ${RUNS} runs per row, temperature 0.8, threads 1`);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 1 });
  const model = await llama.loadModel({ modelPath: BENCH_MODEL, useMmap: true, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 1024, sequences: 1, batchSize: 512, threads: 1 });
  const batch = new BatchContext(llama, model, context);
  say(`vocabulary: ${model.tokens ? (model.fileInfo.metadata.tokenizer?.ggml?.tokens as unknown[] | undefined)?.length : '?'} tokens; banned under a grammar: ${batch.tokenGuard().banned.length}`);
  const grammars = Object.fromEntries(Object.entries(SCHEMAS).map(([k, s]) => [k, batch.createGrammar(compileOutputConstraint({ kind: 'json_schema', schema: s, param: 'schema' }).grammar)]));

  say('\n  mode    | decode ms/token | sample ms/token | first pick rejected | sample ms when fits | sample ms when rejected | chain-only ms');
  // `<schema>+force`: node-llama-cpp's other path (taken when probabilities or confidence are
  // asked for): the grammar over the whole vocabulary first, then the chain once, on every step.
  const forced = (mode: string): boolean => mode.endsWith('+force');
  for (const mode of ['none', ...Object.keys(SCHEMAS), ...Object.keys(SCHEMAS).map((k) => `${k}+force`)]) {
    const decodeMs: number[] = [];
    const sampleMs: number[] = [];
    const fitMs: number[] = [];
    const rejectMs: number[] = [];
    const probeMs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const prompt = model.tokenize(`List numbers. ${randomWords(7000 + run, 40)}`, true) as number[];
      batch.clearSequence(0);
      const sampler = batch.createSampler();
      const probe = batch.createSampler();
      const cfg = { temperature: 0.8, seed: run };
      const state = mode === 'none' ? null : batch.createGrammarState(grammars[mode.replace('+force', '')]!);
      batch.applySamplerConfig(sampler, cfg, state);
      probe.applyConfig({ temperature: 0.8, seed: 1000 + run });
      let idx = (await batch.decode([{ sequenceId: 0, position: 0, tokens: Uint32Array.from(prompt), wantLogits: true }]))[0]!;
      let pos = prompt.length;
      for (let i = 0; i < TOKENS; i++) {
        let fits = true;
        if (state) {
          const t0 = performance.now();
          const pick = await batch.sample(idx, probe);
          probeMs.push(performance.now() - t0);
          fits = state.canAccept(pick);
        }
        const t1 = performance.now();
        const token = forced(mode) ? await forceSample(batch, idx, sampler) : await batch.sample(idx, sampler);
        const dt = performance.now() - t1;
        sampleMs.push(dt);
        if (state) (fits ? fitMs : rejectMs).push(dt);
        if (token < 0 || (state && state.completed)) break;
        const t2 = performance.now();
        idx = (await batch.decode([{ sequenceId: 0, position: pos++, tokens: Uint32Array.of(token), wantLogits: true }]))[0]!;
        decodeMs.push(performance.now() - t2);
      }
      sampler.dispose();
      probe.dispose();
      state?.dispose();
    }
    const steps = sampleMs.length;
    const rejected = state(mode) ? `${rejectMs.length}/${steps} (${((100 * rejectMs.length) / steps).toFixed(0)}%)` : '-';
    say(
      `  ${mode.padEnd(7)} | ${ms(sum(decodeMs) / decodeMs.length).padStart(15)} | ${ms(sum(sampleMs) / steps).padStart(14)} | ${rejected.padStart(19)} | ${(fitMs.length ? ms(median(fitMs)) : '      -').padStart(19)} | ${(rejectMs.length ? ms(median(rejectMs)) : '      -').padStart(23)} | ${probeMs.length ? ms(median(probeMs)) : '      -'}`,
    );
  }
  say('(sample columns after "first pick rejected" are medians; chain-only = the same chain without a grammar, same logits)');
  await context.dispose();
  await model.dispose();
  return 0;
}

const state = (mode: string): boolean => mode !== 'none';

/** Samples with `returnConfidence`, which makes node-llama-cpp apply the grammar first (AddonContext.cpp). */
async function forceSample(batch: BatchContext, idx: number, sampler: Parameters<BatchContext['sample']>[1]): Promise<number> {
  const addon = (batch.context as unknown as { _ctx: { sampleToken(i: number, s: unknown, p: boolean, c: boolean): Promise<number | [number]> } })._ctx;
  const r = await addon.sampleToken(idx, sampler, false, true);
  return Array.isArray(r) ? r[0] : r;
}

runBench(main);
