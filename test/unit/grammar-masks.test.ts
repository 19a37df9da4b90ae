/**
 * Token masks from the grammar mirror (runtime/grammar/grammar-mirror.ts,
 * runtime/llama/token-masks.ts) against llama.cpp itself: at every step of constrained
 * generations over many grammars, a mask must name exactly the tokens llama.cpp's grammar
 * accepts (apart from the guard's bans), and the generations must stay valid with masks on.
 */
import { expect } from 'chai';
import type { LlamaModel } from 'node-llama-cpp';
import type { AddonSampler, BatchContext, GrammarState } from '../../src/runtime/llama/batch-adapter.js';
import { compileJsonSchema } from '../../src/runtime/grammar/json-schema-to-gbnf.js';
import { parseGbnf } from '../../src/runtime/grammar/gbnf-check.js';
import { GrammarMirror } from '../../src/runtime/grammar/grammar-mirror.js';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { mulberry32 } from '../../src/runtime/gguf/prng.js';
import { CONTRACT_SCHEMAS } from '../helpers/contract-schemas.js';
import { openTinyBatch, type TinyBatch } from '../helpers/tiny-llama.js';

const RAW_GRAMMARS: Record<string, string> = {
  repetitions: 'root ::= "{" [a-z]{1,4} ":" [0-9]{1,2} "}"\n',
  alternation: 'root ::= ("yes" | "no" | "maybe") (", " ("yes" | "no"))*\n',
  anyChar: 'root ::= "<" .{2,5} ">"\n',
  negated: 'root ::= "\\"" [^"\\\\\\n]{0,12} "\\""\n',
  nonAscii: 'root ::= ("café" | "naïve" | "€" [0-9]) "!"\n',
  plusAndOptional: 'root ::= [0-9]+ ("." [0-9]+)? ("e" [+-]? [0-9]+)?\n',
  nested: 'root ::= item\nitem ::= "[" (item ("," item)*)? "]" | [a-c]\n',
};

describe('grammar token masks (the TypeScript grammar mirror against llama.cpp)', function () {
  this.timeout(300_000);
  let tiny: TinyBatch;
  let model: LlamaModel;
  let batch: BatchContext;

  before(async () => {
    tiny = await openTinyBatch(11, 'masks', { contextSize: 512, sequences: 1, batchSize: 64 });
    ({ model, batch } = tiny);
  });

  after(async () => {
    await tiny?.close();
  });

  /** Sample until the grammar ends the generation (or 400 tokens); the tokens without the end. */
  async function generate(state: GrammarState, sampler: AddonSampler): Promise<number[]> {
    const prompt = [model.tokens.bos!, ...model.tokenize('Answer:', false)];
    let [idx] = await batch.decode([{ sequenceId: 0, position: 0, tokens: Uint32Array.from(prompt), wantLogits: true }]);
    const tokens: number[] = [];
    for (let i = 0; i < 400 && !state.completed; i++) {
      const t = await batch.sample(idx!, sampler);
      if (model.isEogToken(t as never)) break;
      tokens.push(t);
      [idx] = await batch.decode([{ sequenceId: 0, position: prompt.length + i, tokens: Uint32Array.of(t), wantLogits: true }]);
    }
    batch.clearSequence(0);
    sampler.dispose();
    return tokens;
  }

  function grammars(): [string, string][] {
    const out: [string, string][] = Object.entries(RAW_GRAMMARS);
    for (const [name, schema] of Object.entries(CONTRACT_SCHEMAS)) out.push([`schema ${name}`, compileJsonSchema(schema, { param: 'p' }).gbnf]);
    return out;
  }

  /** Every token llama.cpp's grammar accepts next, minus the guard's bans. */
  function nativeAllowed(state: GrammarState, banned: Set<number>): number[] {
    const out: number[] = [];
    const n = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    for (let t = 0; t < n; t++) if (!banned.has(t) && state.canAccept(t)) out.push(t);
    return out;
  }

  it('a mask names exactly the tokens llama.cpp accepts, at every step of random walks through each grammar', () => {
    const banned = new Set(batch.tokenGuard().banned);
    const rnd = mulberry32(5);
    let masked = 0;
    let wide = 0;
    for (const [name, gbnf] of grammars()) {
      const grammar = batch.createGrammar(gbnf);
      expect(grammar.mirror, name).to.not.equal(null);
      for (let walk = 0; walk < 2; walk++) {
        const state = batch.createGrammarState(grammar);
        for (let step = 0; step < 40 && !state.completed; step++) {
          const allowed = nativeAllowed(state, banned);
          const mask = state.tracker!.mask();
          if (mask) {
            masked++;
            expect(Array.from(mask), `${name} step ${step}`).to.include.members(allowed);
            // Beyond those, only bytes of unfinished characters (offered whenever the state takes
            // non-ASCII text; llama.cpp decides on them).
            const allowedSet = new Set(allowed);
            for (const t of mask) {
              if (allowedSet.has(t) || banned.has(t)) continue;
              const bytes = batch.tokenMasker().bytesOf(t)!;
              expect(bytes.length === 1 && bytes[0]! >= 0x80, `${name} step ${step}: token ${t} is in the mask but does not fit`).to.equal(true);
            }
          } else {
            wide++;
            expect(state.tracker!.lost, `${name} step ${step}: the mirror lost track`).to.equal(false);
            if (!state.tracker!.midCharacter) {
              // No mask only where many tokens fit: over the walk's limit, or a quarter of the probes.
              const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
              expect(allowed.length, `${name} step ${step}: no mask but few tokens fit`).to.be.above(Math.min(batch.tokenMasker().wideLimit, vocab / 8));
            }
          }
          const nonEog = allowed.filter((t) => !model.isEogToken(t as never));
          const pick = nonEog.length > 0 && (rnd() < 0.9 || !state.canEnd()) ? nonEog[Math.floor(rnd() * nonEog.length)]! : model.tokens.eos!;
          state.accept(pick);
        }
      }
    }
    expect(masked).to.be.above(100);
    expect(wide).to.be.above(0);
  });

  it('a constrained generation with masks gives valid output for every contract schema, at several temperatures', async () => {
    for (const [name, schema] of Object.entries(CONTRACT_SCHEMAS)) {
      const grammar = batch.createGrammar(compileJsonSchema(schema, { param: 'p' }).gbnf);
      for (const [temperature, seed] of [[0, 1], [0.8, 2], [1.5, 3]] as const) {
        const state = batch.createGrammarState(grammar);
        const sampler = batch.createSampler();
        batch.applySamplerConfig(sampler, { temperature, seed }, state);
        const tokens = await generate(state, sampler);
        expect(state.completed, `${name} t=${temperature}`).to.equal(true);
        const text = model.detokenize(tokens as never[]);
        expect(validateOutput(schema, text), `${name}: ${text}`).to.include({ valid: true });
      }
    }
  });

  it('a free pick that does not fit is drawn again, then left to llama.cpp: pushed hard towards quotes, a string still validates', async () => {
    const schema = { type: 'object', properties: { s: { type: 'string', minLength: 20, maxLength: 30 } }, required: ['s'], additionalProperties: false };
    const grammar = batch.createGrammar(compileJsonSchema(schema, { param: 'p' }).gbnf);
    // Tokens a string's content never takes: a quote and a backslash with what follows them.
    const favour = Uint32Array.from(new Set([...model.tokenize('"', false), ...model.tokenize('\\q', false), ...model.tokenize('"}', false)]));
    for (const seed of [1, 2, 3, 4]) {
      const state = batch.createGrammarState(grammar);
      const sampler = batch.createSampler();
      batch.applySamplerConfig(sampler, { temperature: 1, seed, tokenBiasKeys: favour, tokenBiasValues: new Float32Array(favour.length).fill(seed * 2) }, state);
      const tokens = await generate(state, sampler);
      const text = model.detokenize(tokens as never[]);
      expect(state.completed, text).to.equal(true);
      expect(validateOutput(schema, text), text).to.include({ valid: true });
    }
  });

  it('the mirror follows llama.cpp repetition expansion: x{m,n}, x*, x+, x? and groups', () => {
    const m = new GrammarMirror(parseGbnf('root ::= "ab"{2,3} [0-9]* ("x" | "y")+ "z"?\n', 'p'));
    const run = (text: string): boolean => {
      let s = m.start as ReturnType<GrammarMirror['step']>;
      for (const ch of text) {
        s = m.step(s!, ch.codePointAt(0)!);
        if (!s) return false;
      }
      return s!.completed;
    };
    for (const ok of ['ababx', 'abababx', 'abab12xyz', 'ababyyy', 'abab0x']) expect(run(ok), ok).to.equal(true);
    for (const bad of ['abx', 'ababababx', 'abab', 'ababxzz', 'ababzx']) expect(run(bad), bad).to.equal(false);
  });
});
