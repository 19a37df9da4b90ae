/**
 * Contract test for the one module that drives node-llama-cpp internals. If an upgrade of
 * node-llama-cpp changes `_ctx`, `_bindings.AddonSampler` or their behaviour, this fails loudly.
 */
import { expect } from 'chai';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { BatchContext, PINNED_NODE_LLAMA_CPP, type AddonSampler, type GrammarState } from '../../src/runtime/llama/batch-adapter.js';
import { InferFluxError } from '../../src/errors.js';
import { compileJsonSchema } from '../../src/runtime/grammar/json-schema-to-gbnf.js';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { openTinyBatch, type TinyBatch } from '../helpers/tiny-llama.js';

describe('BatchContext (node-llama-cpp internals contract)', function () {
  this.timeout(120_000);
  let tiny: TinyBatch;
  let dir: string;
  let llama: Llama;
  let model: LlamaModel;
  let batch: BatchContext;

  before(async () => {
    tiny = await openTinyBatch(7, 'batch', { contextSize: 256, sequences: 2, batchSize: 64 });
    ({ dir, llama, model, batch } = tiny);
  });

  after(async () => {
    await tiny?.close();
  });

  it('is built against the pinned node-llama-cpp version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../node_modules/node-llama-cpp/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(pkg.version).to.equal(PINNED_NODE_LLAMA_CPP);
    const own = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    expect(own.dependencies['node-llama-cpp']).to.equal(PINNED_NODE_LLAMA_CPP);
  });

  async function greedy(seq: number, prompt: number[], n: number): Promise<number[]> {
    const sampler = batch.createSampler();
    sampler.applyConfig({ temperature: 0 });
    const out: number[] = [];
    let [idx] = await batch.decode([{ sequenceId: seq, position: 0, tokens: Uint32Array.from(prompt), wantLogits: true }]);
    for (let i = 0; i < n; i++) {
      const tok = await batch.sample(idx!, sampler);
      out.push(tok);
      [idx] = await batch.decode([{ sequenceId: seq, position: prompt.length + i, tokens: Uint32Array.of(tok), wantLogits: true }]);
    }
    sampler.dispose();
    return out;
  }

  it('greedy decoding through the batch API matches the public evaluate() path', async () => {
    const prompt = model.tokenize('Hello there, how are you today?', false);
    const ours = await greedy(0, [model.tokens.bos!, ...prompt], 12);
    batch.clearSequence(0);

    const ctx2 = await model.createContext({ contextSize: 256, threads: 1 });
    const seq = ctx2.getSequence();
    const theirs: number[] = [];
    for await (const t of seq.evaluate([model.tokens.bos!, ...prompt], { temperature: 0 })) {
      theirs.push(t);
      if (theirs.length === 12) break;
    }
    await ctx2.dispose();
    expect(ours).to.deep.equal(theirs);
  });

  it('detokenizer() gives exactly what model.detokenize(tokens, false, lastTokens) gives', () => {
    const detok = batch.detokenizer();
    const vocab = model.fileInfo.metadata.tokenizer!.ggml!.tokens.length;
    // A real text's tokens (leading spaces depend on the context), then pseudo-random ids
    // (byte-fallback pieces, special tokens), with 0 to 6 context tokens and up to 40 tokens (the
    // reused buffer grows past its first 16).
    const text = model.tokenize(' Once upon a time, there were naïve café owners — 42 of them.', false) as number[];
    let seed = 99;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const cases: [number[], number[]][] = [];
    for (let i = 0; i < text.length; i++) for (let c = 0; c <= Math.min(i, 6); c++) cases.push([text.slice(i, i + 1 + rnd(3)), text.slice(i - c, i)]);
    for (let i = 0; i < 300; i++) {
      const ids = Array.from({ length: 1 + rnd(i % 10 === 0 ? 40 : 4) }, () => rnd(vocab));
      const last = Array.from({ length: rnd(7) }, () => rnd(vocab));
      cases.push([ids, last]);
    }
    for (const [tokens, last] of cases) {
      expect(detok(tokens, last), `tokens ${tokens.join(',')} after ${last.join(',')}`).to.equal(model.detokenize(tokens as never[], false, last as never[]));
    }
    expect(detok([], [1, 2])).to.equal('');
  });

  it('two sequences in one batch give the same tokens as each alone', async () => {
    const a = [model.tokens.bos!, ...model.tokenize('first prompt', false)];
    const b = [model.tokens.bos!, ...model.tokenize('a different second prompt', false)];
    const aloneA = await greedy(0, a, 8);
    batch.clearSequence(0);
    const aloneB = await greedy(1, b, 8);
    batch.clearSequence(1);

    const sa = batch.createSampler();
    const sb = batch.createSampler();
    sa.applyConfig({ temperature: 0 });
    sb.applyConfig({ temperature: 0 });
    let idx = await batch.decode([
      { sequenceId: 0, position: 0, tokens: Uint32Array.from(a), wantLogits: true },
      { sequenceId: 1, position: 0, tokens: Uint32Array.from(b), wantLogits: true },
    ]);
    const outA: number[] = [];
    const outB: number[] = [];
    for (let i = 0; i < 8; i++) {
      const [ta, tb] = await Promise.all([batch.sample(idx[0]!, sa), batch.sample(idx[1]!, sb)]);
      outA.push(ta);
      outB.push(tb);
      idx = await batch.decode([
        { sequenceId: 0, position: a.length + i, tokens: Uint32Array.of(ta), wantLogits: true },
        { sequenceId: 1, position: b.length + i, tokens: Uint32Array.of(tb), wantLogits: true },
      ]);
    }
    sa.dispose();
    sb.dispose();
    batch.clearSequence(0);
    batch.clearSequence(1);
    expect(outA).to.deep.equal(aloneA);
    expect(outB).to.deep.equal(aloneB);
  });

  it('a fixed seed reproduces sampled tokens; items without logits get index -1', async () => {
    const prompt = [model.tokens.bos!, ...model.tokenize('seeded sampling', false)];
    const run = async (): Promise<number[]> => {
      const s = batch.createSampler();
      s.applyConfig({ temperature: 1, seed: 42 });
      const out: number[] = [];
      let [idx] = await batch.decode([{ sequenceId: 0, position: 0, tokens: Uint32Array.from(prompt), wantLogits: true }]);
      for (let i = 0; i < 10; i++) {
        const t = await batch.sample(idx!, s);
        out.push(t);
        [idx] = await batch.decode([{ sequenceId: 0, position: prompt.length + i, tokens: Uint32Array.of(t), wantLogits: true }]);
      }
      s.dispose();
      batch.clearSequence(0);
      return out;
    };
    expect(await run()).to.deep.equal(await run());
    const idx = await batch.decode([{ sequenceId: 1, position: 0, tokens: Uint32Array.from(prompt), wantLogits: false }]);
    expect(Array.from(idx)).to.deep.equal([-1]);
    batch.clearSequence(1);
  });

  /** Greedy continuation of a sequence whose cells hold `prefix`: decode `last` at its position, then n more. */
  async function continueGreedy(b: BatchContext, seq: number, position: number, last: number, n: number): Promise<number[]> {
    const sampler = b.createSampler();
    sampler.applyConfig({ temperature: 0 });
    const out: number[] = [];
    let [idx] = await b.decode([{ sequenceId: seq, position, tokens: Uint32Array.of(last), wantLogits: true }]);
    for (let i = 0; i < n; i++) {
      const tok = await b.sample(idx!, sampler);
      out.push(tok);
      [idx] = await b.decode([{ sequenceId: seq, position: position + 1 + i, tokens: Uint32Array.of(tok), wantLogits: true }]);
    }
    sampler.dispose();
    return out;
  }

  it('saveSequence/loadSequence: a state loaded into a fresh context continues exactly like the source', async () => {
    const prompt = Uint32Array.from([model.tokens.bos!, ...model.tokenize('The state of one sequence, saved and loaded', false)]);
    const prefix = prompt.subarray(0, prompt.length - 1);
    const last = prompt[prompt.length - 1]!;
    await batch.decode([{ sequenceId: 0, position: 0, tokens: prefix, wantLogits: false }]);
    const file = join(dir, 'seq0.bin');
    const bytes = await batch.saveSequence(0, prefix, file);
    expect(bytes).to.equal(statSync(file).size);
    expect(bytes).to.be.greaterThan(12 + 4 * prefix.length);
    const source = await continueGreedy(batch, 0, prefix.length, last, 12);
    batch.clearSequence(0);

    // Same `sequences` count (the file stores n_stream); a different sequence id than the source.
    const ctx2 = await model.createContext({ contextSize: 256, sequences: 2, threads: 1, batchSize: 64 });
    try {
      const b2 = new BatchContext(llama, model, ctx2);
      const restored = await b2.loadSequence(1, file, 256);
      expect(Array.from(restored)).to.deep.equal(Array.from(prefix));
      expect(await continueGreedy(b2, 1, prefix.length, last, 12)).to.deep.equal(source);
      b2.dispose();
    } finally {
      await ctx2.dispose();
    }
  });

  it('loadSequence rejects a state with more tokens than maxContextSize', async () => {
    const prompt = Uint32Array.from([model.tokens.bos!, ...model.tokenize('too long for the target', false)]);
    await batch.decode([{ sequenceId: 0, position: 0, tokens: prompt, wantLogits: false }]);
    const file = join(dir, 'long.bin');
    await batch.saveSequence(0, prompt, file);
    batch.clearSequence(0);
    let err: unknown;
    await batch.loadSequence(1, file, prompt.length - 1).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(Error);
    batch.clearSequence(1);
  });

  it('trimSequence then re-evaluating gives the same tokens as a fresh evaluation of the shorter prefix', async () => {
    const long = Uint32Array.from([model.tokens.bos!, ...model.tokenize('a shared prefix and then a tail that will be trimmed away', false)]);
    const keep = 5;
    const suffix = Uint32Array.from(model.tokenize(' new words', false));
    const run = async (trimFirst: boolean): Promise<number[]> => {
      if (trimFirst) {
        await batch.decode([{ sequenceId: 0, position: 0, tokens: long, wantLogits: false }]);
        expect(batch.trimSequence(0, keep)).to.equal(true);
      } else {
        await batch.decode([{ sequenceId: 0, position: 0, tokens: long.subarray(0, keep), wantLogits: false }]);
      }
      await batch.decode([{ sequenceId: 0, position: keep, tokens: suffix.subarray(0, -1), wantLogits: false }]);
      const out = await continueGreedy(batch, 0, keep + suffix.length - 1, suffix[suffix.length - 1]!, 10);
      batch.clearSequence(0);
      return out;
    };
    const fresh = await run(false);
    expect(await run(true)).to.deep.equal(fresh);
  });

  describe('grammar-constrained sampling', () => {
    const GBNF = 'root ::= "{" [a-z]{1,4} ":" [0-9]{1,2} "}"\n';
    const shape = /^\{[a-z]{1,4}:[0-9]{1,2}\}$/;

    /** Generate until the grammar ends it (or `limit` tokens); returns the tokens without the EOG. */
    async function constrained(state: GrammarState, sampler: AddonSampler, limit = 40): Promise<{ tokens: number[]; ended: boolean }> {
      const prompt = [model.tokens.bos!, ...model.tokenize('Answer:', false)];
      let [idx] = await batch.decode([{ sequenceId: 0, position: 0, tokens: Uint32Array.from(prompt), wantLogits: true }]);
      const tokens: number[] = [];
      for (let i = 0; i < limit; i++) {
        const t = await batch.sample(idx!, sampler);
        if (model.isEogToken(t as never)) return { tokens, ended: true };
        tokens.push(t);
        [idx] = await batch.decode([{ sequenceId: 0, position: prompt.length + i, tokens: Uint32Array.of(t), wantLogits: true }]);
      }
      return { tokens, ended: false };
    }

    it('constrains sampling; the grammar ends the generation with an end-of-generation token', async () => {
      const grammar = batch.createGrammar(GBNF);
      for (const temperature of [0, 1, 1.5]) {
        for (const seed of [1, 2, 3]) {
          const state = batch.createGrammarState(grammar);
          const sampler = batch.createSampler();
          batch.applySamplerConfig(sampler, { temperature, seed }, state);
          const { tokens, ended } = await constrained(state, sampler);
          batch.clearSequence(0);
          sampler.dispose();
          expect(ended, `t=${temperature} seed=${seed}`).to.equal(true);
          expect(state.completed).to.equal(true);
          expect(model.detokenize(tokens as never[])).to.match(shape);
        }
      }
    });

    it('re-applying the config through applySamplerConfig keeps the grammar attached', async () => {
      const state = batch.createGrammarState(batch.createGrammar(GBNF));
      const sampler = batch.createSampler();
      batch.applySamplerConfig(sampler, { temperature: 1, seed: 9 }, state);
      batch.applySamplerConfig(sampler, { temperature: 1, seed: 9, tokenBiasKeys: Uint32Array.of(model.tokens.eos!), tokenBiasValues: Float32Array.of(-Infinity) }, state);
      const { tokens, ended } = await constrained(state, sampler);
      batch.clearSequence(0);
      sampler.dispose();
      // The end-of-generation ban cannot outlast a complete grammar: it allows nothing else.
      expect(ended).to.equal(true);
      expect(model.detokenize(tokens as never[])).to.match(shape);
    });

    it('replays tokens into a fresh state; refuses tokens that do not fit without reaching native code', async () => {
      const grammar = batch.createGrammar(GBNF);
      const sampled = batch.createGrammarState(grammar);
      const sampler = batch.createSampler();
      batch.applySamplerConfig(sampler, { temperature: 1, seed: 5 }, sampled);
      const { tokens } = await constrained(sampled, sampler);
      batch.clearSequence(0);
      sampler.dispose();

      const replay = batch.createGrammarState(grammar);
      const eos = model.tokens.eos!;
      // Each of these would abort the process in llama.cpp (GGML_ABORT / GGML_ASSERT) if it got there.
      expect(replay.canAccept(eos)).to.equal(false);
      expect(() => replay.accept(eos)).to.throw('does not fit');
      const wrong = model.tokenize('zz', false)[0]!;
      expect(() => replay.accept(wrong)).to.throw('does not fit');
      expect(() => replay.accept(-1)).to.throw('does not fit');
      expect(() => replay.accept(1e9)).to.throw('does not fit');
      expect(replay.broken).to.equal(false);
      const half = replay.clone();
      for (const t of tokens) replay.accept(t);
      expect(replay.canEnd()).to.equal(true);
      expect(half.canEnd()).to.equal(false); // the clone did not move
      replay.accept(eos);
      expect(replay.completed).to.equal(true);
    });

    it('keeps tokens whose text the grammar and the detokenizer disagree on out of a constrained generation', async () => {
      const byte = (b: number): number => 5 + b; // the tiny vocab: 5 specials, then <0x00>..<0xFF>
      const guard = batch.tokenGuard();
      // <unk> <s> <|im_start|>; not </s> or <|im_end|>, which end a generation.
      expect(Array.from(guard.banned)).to.deep.equal([0, 1, 3]);
      expect(Array.from(guard.after(byte(0xe0))!)).to.deep.equal(Array.from({ length: 32 }, (_, i) => byte(0x80 + i)));
      expect(Array.from(guard.after(byte(0xf0))!)).to.deep.equal(Array.from({ length: 16 }, (_, i) => byte(0x80 + i)));
      expect(guard.after(byte(0xe2))).to.equal(undefined);

      // Pushed towards `<unk>` (five characters to the grammar, nothing once detokenized) and
      // towards the overlong E0 9F BF (one code point to the grammar, three U+FFFD as text).
      for (const [schema, favour] of [
        [{ type: 'string', minLength: 5, maxLength: 5 }, [0]],
        [{ type: 'string', minLength: 1, maxLength: 1 }, [byte(0xe0), byte(0x9f), byte(0xbf)]],
      ] as const) {
        const grammar = batch.createGrammar(compileJsonSchema(schema, { param: 'p' }).gbnf);
        for (const seed of [1, 2, 3]) {
          const state = batch.createGrammarState(grammar);
          const sampler = batch.createSampler();
          const keys = Uint32Array.from(favour);
          batch.applySamplerConfig(sampler, { temperature: 1, seed, tokenBiasKeys: keys, tokenBiasValues: new Float32Array(keys.length).fill(30) }, state);
          const { tokens, ended } = await constrained(state, sampler);
          batch.clearSequence(0);
          sampler.dispose();
          const text = model.detokenize(tokens as never[]);
          expect(ended).to.equal(true);
          expect(validateOutput(schema, text), JSON.stringify(text)).to.include({ valid: true });
        }
      }
    });

    it('a bad grammar is a 400 before llama.cpp sees it', () => {
      for (const [gbnf, why] of [
        ['root ::= "a', 'not closed'],
        [`root ::= ${'('.repeat(100_000)}"a"${')'.repeat(100_000)}`, 'nest deeper'],
        ['root ::= item\n', "'item' is used but not defined"],
        ['root ::= root "a" | "b"\n', 'llama.cpp refused it'], // left recursion: llama.cpp's own check
      ] as const) {
        expect(() => batch.createGrammar(gbnf, 'grammar'), why).to.throw(InferFluxError, why).with.property('param', 'grammar');
      }
    });
  });
});

