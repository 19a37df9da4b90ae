/**
 * LM Studio's REST API (`/api/v0`) on the real server (actors + llama.cpp on the generated tiny
 * model), through the `openai` client pointed at `/api/v0` and plain fetch: model listings,
 * chat and text completions with LM Studio's `stats`, `model_info` and `runtime`, streamed and
 * not; embeddings on a model without the capability are a 400 naming it (test/integration/embeddings.test.ts
 * covers the capable model).
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import { api, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';

interface LmStudioExtras {
  stats: { tokens_per_second: number; time_to_first_token: number; generation_time: number; stop_reason: string };
  model_info: { arch: string; quant: string; format: string; context_length: number };
  runtime: { name: string; version: string; supported_formats: string[] };
}

function expectExtras(x: LmStudioExtras, quant: string): void {
  expect(x.model_info).to.deep.equal({ arch: 'llama', quant, format: 'gguf', context_length: 2048 });
  expect(x.runtime).to.deep.equal({ name: 'inferflux-llama.cpp', version: '0.1.0', supported_formats: ['gguf'] });
  expect(x.stats.time_to_first_token).to.be.a('number').and.be.greaterThan(0);
  expect(x.stats.generation_time).to.be.a('number').and.be.at.least(0);
  expect(x.stats.tokens_per_second).to.be.a('number').and.be.at.least(0);
  expect(x.stats.stop_reason).to.be.oneOf(['eosFound', 'stopStringFound', 'maxPredictedTokensReached']);
}

describe('LM Studio REST API on the real engine', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: OpenAI;
  let quant: string;

  before(async () => {
    server = await protocolServer();
    client = new OpenAI({ baseURL: `${server.url}/api/v0`, apiKey: KEYS.all, maxRetries: 0 });
  });

  it('lists models in its shape, one model by id, 404 for an unknown id', async () => {
    const list = await api(server, 'GET', '/api/v0/models', undefined, KEYS.all);
    expect(list.status).to.equal(200);
    expect(list.body.object).to.equal('list');
    const m = list.body.data[0];
    quant = m.quantization;
    expect(quant).to.be.a('string').and.not.equal('unknown');
    expect(m).to.deep.equal({
      id: MODEL,
      object: 'model',
      type: 'llm',
      publisher: 'inferflux',
      arch: 'llama',
      compatibility_type: 'gguf',
      quantization: quant,
      state: 'loaded',
      max_context_length: m.max_context_length,
    });
    expect(m.max_context_length).to.be.greaterThan(0);
    const one = await api(server, 'GET', `/api/v0/models/${MODEL}`, undefined, KEYS.all);
    expect(one.body).to.deep.equal(m);
    const none = await api(server, 'GET', '/api/v0/models/nope', undefined, KEYS.all);
    expect(none.status).to.equal(404);
    expect(none.body.error.code).to.equal('model_not_found');
  });

  it('chat completion with stats and model_info; streamed, they arrive on the last chunk', async () => {
    const ask = { model: MODEL, messages: [{ role: 'user' as const, content: 'Say hello.' }], max_tokens: 8, temperature: 0 };
    const r = (await client.chat.completions.create({ ...ask, ignore_eos: true } as never)) as OpenAI.ChatCompletion & LmStudioExtras;
    expect(r.object).to.equal('chat.completion');
    expectExtras(r, quant);
    expect(r.stats.stop_reason).to.equal('maxPredictedTokensReached');
    expect(r.usage!.completion_tokens).to.equal(8);
    const chunks = [];
    for await (const c of await client.chat.completions.create({ ...ask, stream: true })) chunks.push(c as OpenAI.ChatCompletionChunk & Partial<LmStudioExtras>);
    const last = chunks.at(-1)!;
    expect(last.choices).to.deep.equal([]);
    expectExtras(last as LmStudioExtras, quant);
    expect(chunks.slice(0, -1).every((c) => c.stats === undefined)).to.equal(true);
    // OpenAI's own route is unchanged: no LM Studio fields.
    const plain = await new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.all, maxRetries: 0 }).chat.completions.create(ask);
    expect(plain).to.not.have.property('stats');
  });

  it('text completion: a stop string is reported as stopStringFound', async () => {
    const first = (await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 20, temperature: 0, ignore_eos: true } as never)) as OpenAI.Completion & LmStudioExtras;
    expectExtras(first, quant);
    const text = first.choices[0]!.text;
    expect(text.length).to.be.greaterThan(6);
    const stop = text.slice(3, 5);
    const r = (await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 20, temperature: 0, ignore_eos: true, stop: [stop] } as never)) as OpenAI.Completion & LmStudioExtras;
    expect(r.choices[0]!.text).to.equal(text.slice(0, text.indexOf(stop)));
    expect(r.stats.stop_reason).to.equal('stopStringFound');
  });

  it('embeddings on a generative model are a 400 in OpenAI shape naming model and capability; an unknown model is a 404 before any work', async () => {
    try {
      await client.embeddings.create({ model: MODEL, input: 'hi' });
      expect.fail('embeddings should be refused');
    } catch (err) {
      expect(err).to.be.instanceOf(OpenAI.APIError);
      const e = err as InstanceType<typeof OpenAI.APIError>;
      expect([e.status, e.code, e.param]).to.deep.equal([400, 'embeddings_not_supported', 'model']);
      expect(e.message).to.include(`Model '${MODEL}' does not have the embeddings capability`);
    }
    const r = await api(server, 'POST', '/api/v0/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] }, KEYS.all);
    expect(r.status).to.equal(404);
    expect(r.body.error.code).to.equal('model_not_found');
  });
});
