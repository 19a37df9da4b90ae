/**
 * Structured output over HTTP, on the real engine with the random tiny model (validity can only
 * come from the constraint): the contract suite sends 24 schemas x 9 (temperature, seed) runs =
 * 216 requests through the `openai` client with `response_format: json_schema`, and every answer
 * must JSON.parse, validate with ajv and end with finish_reason "stop" (the grammar, not the
 * limit). Then json_object, raw GBNF, streaming, the metrics, and the 400s before any work.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { CONTRACT_RUNS, CONTRACT_SCHEMAS } from '../helpers/contract-schemas.js';
import { metric, serverWithOpenAI } from '../helpers/server.js';

const RUNS = CONTRACT_RUNS;

describe('structured output over HTTP (real engine, openai client)', function () {
  this.timeout(300_000);
  const ctx = serverWithOpenAI({ INFERFLUX_SEQUENCES_PER_WORKER: '8' });

  it(`contract: ${Object.keys(CONTRACT_SCHEMAS).length} schemas x ${RUNS.length} runs all parse, validate and end by the grammar`, async () => {
    const jobs: (() => Promise<string | null>)[] = [];
    for (const [name, schema] of Object.entries(CONTRACT_SCHEMAS)) {
      for (const [temperature, seed] of RUNS) {
        jobs.push(async () => {
          const r = await ctx.client.chat.completions.create({
            model: 'tiny-seed0',
            messages: [{ role: 'user', content: `Give me ${name} as JSON.` }],
            temperature,
            seed,
            max_tokens: 400,
            response_format: { type: 'json_schema', json_schema: { name, schema: schema as Record<string, unknown>, strict: true } },
          });
          const c = r.choices[0]!;
          if (c.finish_reason !== 'stop') return `${name} t=${temperature} s=${seed}: finish_reason ${c.finish_reason}`;
          const v = validateOutput(schema, c.message.content ?? '');
          return v.valid ? null : `${name} t=${temperature} s=${seed}: ${v.reason} ${v.message}: ${c.message.content}`;
        });
      }
    }
    expect(jobs.length).to.be.at.least(200);
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < jobs.length) {
          const f = await jobs[next++]!();
          if (f) failures.push(f);
        }
      }),
    );
    expect(failures).to.deep.equal([]);
    expect(await metric(ctx.server.url, 'inferflux_structured_output_total{outcome="valid"}')).to.equal(jobs.length);
    expect(await metric(ctx.server.url, 'inferflux_structured_output_total{outcome="invalid"}')).to.equal(0);
    // How the constrained tokens were sampled: digits, punctuation and keys through masks, string
    // contents through free picks checked against llama.cpp's grammar (bench/README.md).
    const samples = Object.fromEntries(
      await Promise.all(['mask', 'free', 'redraw', 'fallback', 'llama'].map(async (p) => [p, await metric(ctx.server.url, `inferflux_grammar_samples_total{path="${p}"}`)] as const)),
    );
    expect(samples.mask, JSON.stringify(samples)).to.be.above(jobs.length);
    expect(samples.free, JSON.stringify(samples)).to.be.above(0);
    expect(samples.llama, JSON.stringify(samples)).to.equal(0);
  });

  it('json_object gives a JSON object; a raw GBNF grammar is followed; both stream too', async () => {
    const obj = await ctx.client.chat.completions.create({
      model: 'tiny-seed0',
      messages: [{ role: 'user', content: 'json please' }],
      temperature: 0.8,
      seed: 5,
      max_tokens: 300,
      response_format: { type: 'json_object' },
    });
    if (obj.choices[0]!.finish_reason === 'stop') {
      const v = JSON.parse(obj.choices[0]!.message.content!);
      expect(v).to.be.an('object');
    } else expect(obj.choices[0]!.finish_reason).to.equal('length');
    const gbnf = 'root ::= ("yes" | "no") " " [0-9] [0-9]?';
    const g = await ctx.client.completions.create({ model: 'tiny-seed0', prompt: 'Answer:', max_tokens: 20, temperature: 1, seed: 3, grammar: gbnf } as never);
    expect((g as OpenAI.Completion).choices[0]!.text).to.match(/^(yes|no) [0-9][0-9]?$/);
    expect((g as OpenAI.Completion).choices[0]!.finish_reason).to.equal('stop');
    const stream = await ctx.client.chat.completions.create({
      model: 'tiny-seed0',
      messages: [{ role: 'user', content: 'colour?' }],
      max_tokens: 50,
      stream: true,
      response_format: { type: 'json_schema', json_schema: { name: 'c', schema: CONTRACT_SCHEMAS.colour as Record<string, unknown> } },
    });
    let text = '';
    let reason: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      reason = chunk.choices[0]?.finish_reason ?? reason;
    }
    expect(['"red"', '"green"', '"blue"']).to.include(text);
    expect(reason).to.equal('stop');
  });

  it('bad input is a 400 naming the parameter, before any token is generated', async () => {
    const before = await metric(ctx.server.url, 'inferflux_completion_tokens_total{model="tiny-seed0",backend="cpu"}');
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x' } } }, 'response_format.json_schema.schema', /required/],
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } }, patternProperties: {} } } } }, 'response_format.json_schema.schema', /patternProperties/],
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'array', uniqueItems: true } } } }, 'response_format.json_schema.schema', /uniqueItems/],
      [{ grammar: 'root ::= undefined-rule' }, 'grammar', /undefined-rule/],
      [{ grammar: 'root ::= ("a"' }, 'grammar', /./],
      [{ response_format: { type: 'json_object' }, grammar: 'root ::= "a"' }, 'grammar', /not both/],
      [{ response_format: { type: 'json_object' }, ignore_eos: true }, 'ignore_eos', /grammar ends/],
    ];
    for (const [extra, param, message] of cases) {
      const err = await ctx.client.chat.completions
        .create({ model: 'tiny-seed0', messages: [{ role: 'user', content: 'x' }], max_tokens: 5, ...extra } as never)
        .catch((e: unknown) => e);
      expect(err, JSON.stringify(extra)).to.be.instanceOf(OpenAI.BadRequestError);
      const e = err as InstanceType<typeof OpenAI.BadRequestError>;
      expect(e.param, JSON.stringify(extra)).to.equal(param);
      expect(e.message, JSON.stringify(extra)).to.match(message);
    }
    expect(await metric(ctx.server.url, 'inferflux_completion_tokens_total{model="tiny-seed0",backend="cpu"}')).to.equal(before);
    expect(await metric(ctx.server.url, 'inferflux_grammar_compile_seconds_count{kind="json_schema"}')).to.be.greaterThan(0);
  });
});
