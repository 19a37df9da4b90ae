/**
 * Structured-output contract: with random weights, a valid answer can only come from the
 * constraint. 24 schemas x 9 generations (temperatures 0, 0.7, 1.0, 1.5; several seeds), eight
 * sequences at a time through BatchContext on the tiny generated model (real llama.cpp). Every
 * output must JSON.parse, validate with ajv, and have been ended by the grammar (an
 * end-of-generation token sampled once the grammar was complete), never by the token limit.
 */
import { expect } from 'chai';
import type { LlamaModel } from 'node-llama-cpp';
import { GrammarCache } from '../../src/runtime/grammar/grammar-cache.js';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import type { AddonSampler, BatchContext, GrammarState, NativeGrammar } from '../../src/runtime/llama/batch-adapter.js';
import { openTinyBatch, type TinyBatch } from '../helpers/tiny-llama.js';

import { CONTRACT_RUNS, CONTRACT_SCHEMAS as SCHEMAS } from '../helpers/contract-schemas.js';

const RUNS = CONTRACT_RUNS;
const SEQUENCES = 8;
/** A safety net only: every answer here is far shorter, and reaching it fails the test. */
const MAX_TOKENS = 400;

interface Job {
  name: string;
  schema: unknown;
  grammar: NativeGrammar;
  temperature: number;
  seed: number;
}

interface Slot {
  job: Job;
  state: GrammarState;
  sampler: AddonSampler;
  feed: Uint32Array;
  pos: number;
  tokens: number[];
}

interface Outcome {
  job: Job;
  text: string;
  tokens: number;
  ended: 'grammar' | 'limit';
  completed: boolean;
}

describe('structured output contract (grammar-constrained decoding on the random tiny model)', function () {
  this.timeout(180_000);
  let tiny: TinyBatch;
  let model: LlamaModel;
  let batch: BatchContext;

  before(async () => {
    tiny = await openTinyBatch(7, 'grammar', { contextSize: 512, sequences: SEQUENCES, batchSize: 256 });
    ({ model, batch } = tiny);
  });

  after(async () => {
    await tiny?.close();
  });

  async function runAll(jobs: Job[]): Promise<Outcome[]> {
    const prompt = Uint32Array.from([model.tokens.bos!, ...model.tokenize('Answer in JSON:', false)]);
    const queue = [...jobs];
    const slots: Array<Slot | null> = new Array<Slot | null>(SEQUENCES).fill(null);
    const out: Outcome[] = [];
    const finish = (seq: number, ended: Outcome['ended']): void => {
      const slot = slots[seq]!;
      out.push({ job: slot.job, text: model.detokenize(slot.tokens as never[]), tokens: slot.tokens.length, ended, completed: slot.state.completed });
      slot.sampler.dispose();
      slot.state.dispose();
      batch.clearSequence(seq);
      slots[seq] = null;
    };
    while (queue.length > 0 || slots.some((s) => s !== null)) {
      for (let seq = 0; seq < SEQUENCES; seq++) {
        if (slots[seq] || queue.length === 0) continue;
        const job = queue.shift()!;
        const state = batch.createGrammarState(job.grammar);
        const sampler = batch.createSampler();
        batch.applySamplerConfig(sampler, { temperature: job.temperature, seed: job.seed }, state);
        slots[seq] = { job, state, sampler, feed: prompt, pos: 0, tokens: [] };
      }
      const active = slots.map((s, seq) => [s, seq] as const).filter((x): x is readonly [Slot, number] => x[0] !== null);
      const idx = await batch.decode(active.map(([s, seq]) => ({ sequenceId: seq, position: s.pos, tokens: s.feed, wantLogits: true })));
      const sampled = await Promise.all(active.map(([s], i) => batch.sample(idx[i]!, s.sampler)));
      active.forEach(([s, seq], i) => {
        const token = sampled[i]!;
        s.pos += s.feed.length;
        if (model.isEogToken(token as never)) return finish(seq, 'grammar');
        s.tokens.push(token);
        if (s.tokens.length >= MAX_TOKENS) return finish(seq, 'limit');
        s.feed = Uint32Array.of(token);
      });
    }
    return out;
  }

  it(`${Object.keys(SCHEMAS).length} schemas x ${RUNS.length} generations: every output parses, validates and was ended by the grammar`, async () => {
    const cache = new GrammarCache();
    const jobs: Job[] = [];
    for (const [name, schema] of Object.entries(SCHEMAS)) {
      const grammar = batch.createGrammar(cache.forSchema(schema, 'response_format.json_schema.schema').gbnf);
      for (const [temperature, seed] of RUNS) jobs.push({ name, schema, grammar, temperature, seed });
    }
    expect(Object.keys(SCHEMAS).length).to.be.at.least(20);
    expect(jobs.length).to.be.at.least(200);

    const t0 = performance.now();
    const outcomes = await runAll(jobs);
    const seconds = (performance.now() - t0) / 1000;
    expect(outcomes.length).to.equal(jobs.length);

    const failures: string[] = [];
    let tokens = 0;
    for (const o of outcomes) {
      tokens += o.tokens;
      const where = `${o.job.name} t=${o.job.temperature} seed=${o.job.seed}`;
      if (o.ended !== 'grammar' || !o.completed) failures.push(`${where}: ended by ${o.ended} after ${o.tokens} tokens: ${JSON.stringify(o.text.slice(0, 120))}`);
      const check = validateOutput(o.job.schema, o.text);
      if (!check.valid) failures.push(`${where}: ${check.reason} (${check.message}): ${JSON.stringify(o.text)}`);
    }
    // Distinct outputs per schema: the sampler varied, and the constraint still held.
    const distinct = new Set(outcomes.map((o) => `${o.job.name}\0${o.text}`)).size;
    console.log(`      ${outcomes.length} generations, ${tokens} tokens, ${distinct} distinct outputs, ${seconds.toFixed(1)} s`);
    expect(failures).to.deep.equal([]);
    expect(distinct).to.be.greaterThan(outcomes.length / 2);
  });
});
