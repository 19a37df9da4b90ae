/**
 * Embeddings on the real server (embedding pool + llama.cpp) with two generated models: `emb`
 * (tiny-embed: declares mean pooling, so it serves embeddings) and `gen` (tiny: generative, no
 * pooling type, so it does not). Through the `openai` client (float and base64), the `ollama`
 * client (`embed`, `embeddings`) and fetch for LM Studio. The embedding context is 64 tokens and
 * a request takes at most 16 inputs and one waiting request, so the limits are cheap to reach.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { ensureModel } from '../../src/runtime/gguf/generate.js';
import { api, metric, startServer, tinyModel, type RunningServer } from '../helpers/server.js';

const CONTEXT = 64;
const BATCH_MAX = 16;

function norm(v: readonly number[]): number {
  return Math.sqrt(v.reduce((a, x) => a + x * x, 0));
}

async function openAIError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(OpenAI.APIError);
    return err as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error('expected the request to be refused');
}

/** A text of about `words` tokens on the tiny vocabulary. */
function longText(words: number, seed = 0): string {
  return Array.from({ length: words }, (_, i) => `w${(i * 7 + seed) % 97}`).join(' ');
}

describe('embeddings on the real engine', function () {
  this.timeout(180_000);
  let server: RunningServer;
  let client: OpenAI;
  let ollama: Ollama;

  before(async () => {
    const emb = join(tmpdir(), 'inferflux-test-models', 'tiny-embed-seed0.gguf');
    await ensureModel('tiny-embed', emb, 0);
    server = await startServer({
      INFERFLUX_MODEL_PATH: '',
      INFERFLUX_MODELS: `id=emb,path=${emb};id=gen,path=${await tinyModel()},default=true`,
      INFERFLUX_EMBEDDINGS_CONTEXT_SIZE: String(CONTEXT),
      INFERFLUX_EMBEDDINGS_BATCH_MAX: String(BATCH_MAX),
      INFERFLUX_EMBEDDINGS_MAX_QUEUE: '1',
    });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    ollama = new Ollama({ host: server.url });
  });

  after(async () => {
    if (server) expect(await server.stop(), 'exit code after SIGTERM').to.equal(0);
  });

  it('OpenAI float and base64: unit vectors in input order, equal for equal inputs, batch equal to single, usage = the tokenizer count', async () => {
    const inputs = ['a b c', 'hello world', 'a b c'];
    const float = await client.embeddings.create({ model: 'emb', input: inputs, encoding_format: 'float' });
    expect(float.object).to.equal('list');
    expect(float.model).to.equal('emb');
    expect(float.data.map((d) => [d.object, d.index])).to.deep.equal([['embedding', 0], ['embedding', 1], ['embedding', 2]]);
    const vectors = float.data.map((d) => d.embedding);
    for (const v of vectors) {
      expect(v).to.have.length(64); // the model's embedding length
      expect(norm(v)).to.be.closeTo(1, 1e-5);
    }
    expect(vectors[2]).to.deep.equal(vectors[0]);
    expect(vectors[1]).to.not.deep.equal(vectors[0]);
    // The client asks for base64 by default and decodes it: the same float32 values.
    const b64 = await client.embeddings.create({ model: 'emb', input: inputs });
    expect(b64.data.map((d) => d.embedding)).to.deep.equal(vectors);
    for (const [i, text] of inputs.entries()) {
      const one = await client.embeddings.create({ model: 'emb', input: text, encoding_format: 'float' });
      expect(one.data[0]!.embedding, `single ${i}`).to.deep.equal(vectors[i]);
    }
    let counted = 0;
    for (const text of inputs) counted += (await api(server, 'POST', '/tokenize', { model: 'emb', content: text, add_special: true }, null)).body.tokens.length;
    expect(float.usage).to.deep.equal({ prompt_tokens: counted, total_tokens: counted });
  });

  it('token arrays embed like their text; raw base64 is little-endian float32', async () => {
    const text = 'hello world';
    const tokens: number[] = (await api(server, 'POST', '/tokenize', { model: 'emb', content: text, add_special: true }, null)).body.tokens;
    const byText = (await client.embeddings.create({ model: 'emb', input: text, encoding_format: 'float' })).data[0]!.embedding;
    const one = await client.embeddings.create({ model: 'emb', input: tokens, encoding_format: 'float' });
    expect(one.data[0]!.embedding).to.deep.equal(byText);
    expect(one.usage.prompt_tokens).to.equal(tokens.length);
    const many = await client.embeddings.create({ model: 'emb', input: [tokens, tokens.slice(1)], encoding_format: 'float' });
    // The model's BOS is added when missing, so both are the same evaluation.
    expect(many.data.map((d) => d.embedding)).to.deep.equal([byText, byText]);
    const raw = await api(server, 'POST', '/v1/embeddings', { model: 'emb', input: text, encoding_format: 'base64', user: 'u-1' }, null);
    const buf = Buffer.from(raw.body.data[0].embedding as string, 'base64');
    expect(Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4))).to.deep.equal(byText);
  });

  it('refuses bad input with 400 naming the field: empty strings, empty arrays, dimensions, over-context, too many inputs, ids outside the vocabulary', async () => {
    const cases: [unknown, string | null, string][] = [
      ['', 'input', 'fewer than 1 characters'],
      [['a', ''], 'input[1]', 'fewer than 1 characters'],
      [[], 'input', 'fewer than 1 items'],
      [['short', longText(80)], 'input[1]', `at most ${CONTEXT - 1} tokens`],
      [longText(80), 'input', `at most ${CONTEXT - 1} tokens`],
      [Array.from({ length: BATCH_MAX + 1 }, () => 'x'), 'input', `at most ${BATCH_MAX} (runtime.embeddings.batch_max)`],
      [[1, 2, 999_999], 'input', 'outside the vocabulary'],
      [[[1], [2, -1]], 'input[1][1]', '>= 0'],
    ];
    for (const [input, param, text] of cases) {
      const e = await openAIError(client.embeddings.create({ model: 'emb', input: input as string, encoding_format: 'float' }));
      expect([e.status, e.param], JSON.stringify(input).slice(0, 40)).to.deep.equal([400, param]);
      expect(e.message).to.include(text);
    }
    const over = await openAIError(client.embeddings.create({ model: 'emb', input: longText(80), encoding_format: 'float' }));
    expect(over.code).to.equal('context_length_exceeded');
    const dims = await openAIError(client.embeddings.create({ model: 'emb', input: 'x', dimensions: 8 }));
    expect([dims.status, dims.param, dims.code]).to.deep.equal([400, 'dimensions', 'invalid_request']);
    const unknown = await openAIError(client.embeddings.create({ model: 'nope', input: 'x' }));
    expect([unknown.status, unknown.code]).to.deep.equal([404, 'model_not_found']);
    const gen = await openAIError(client.embeddings.create({ model: 'gen', input: 'x' }));
    expect([gen.status, gen.code, gen.param]).to.deep.equal([400, 'embeddings_not_supported', 'model']);
    expect(gen.message).to.include("Model 'gen' does not have the embeddings capability");
  });

  it('a request that names no model goes to the served model that embeds (the default does not); a named model is kept', async () => {
    const sample = 'inferflux_capability_route_fallbacks_total{capability="embeddings",from_model="gen",to_model="emb"}';
    const before = await metric(server.url, sample);
    const routed = await api(server, 'POST', '/v1/embeddings', { input: ['a b c', 'hello world'] }, null);
    expect(routed.status).to.equal(200);
    expect(routed.body.model).to.equal('emb');
    const pinned = await client.embeddings.create({ model: 'emb', input: ['a b c', 'hello world'], encoding_format: 'float' });
    expect(routed.body.data.map((d: { embedding: number[] }) => d.embedding)).to.deep.equal(pinned.data.map((d) => d.embedding));
    expect(await metric(server.url, sample)).to.equal(before + 1);
    // Pinning is preserved: naming the default that cannot embed is still its error, not a reroute.
    const gen = await openAIError(client.embeddings.create({ model: 'gen', input: 'x' }));
    expect([gen.status, gen.code]).to.deep.equal([400, 'embeddings_not_supported']);
    expect(await metric(server.url, sample)).to.equal(before + 1);
  });

  it('LM Studio /api/v0/embeddings answers as OpenAI does', async () => {
    const v1 = await api(server, 'POST', '/v1/embeddings', { model: 'emb', input: ['a b c', 'hello world'] }, null);
    const v0 = await api(server, 'POST', '/api/v0/embeddings', { model: 'emb', input: ['a b c', 'hello world'] }, null);
    expect(v0.status).to.equal(200);
    expect(v0.body).to.deep.equal(v1.body);
    const bad = await api(server, 'POST', '/api/v0/embeddings', { model: 'gen', input: 'x' }, null);
    expect([bad.status, bad.body.error.code]).to.deep.equal([400, 'embeddings_not_supported']);
  });

  it('Ollama embed and embeddings: the same vectors, its shapes, explicit truncation, num_ctx, empty input', async () => {
    const inputs = ['a b c', 'hello world'];
    const openai = await client.embeddings.create({ model: 'emb', input: inputs, encoding_format: 'float' });
    const r = await ollama.embed({ model: 'emb', input: inputs });
    expect(r.model).to.equal('emb');
    expect(r.embeddings).to.deep.equal(openai.data.map((d) => d.embedding));
    expect(r.prompt_eval_count).to.equal(openai.usage.prompt_tokens);
    expect(r.total_duration).to.be.greaterThan(0);
    expect(r.load_duration).to.be.at.least(0);
    const legacy = await ollama.embeddings({ model: 'emb:latest', prompt: 'a b c' });
    expect(legacy).to.deep.equal({ embedding: openai.data[0]!.embedding });
    // truncate (default true): cut to the context explicitly; false: refused naming the input.
    const cut = await ollama.embed({ model: 'emb', input: [longText(80)] });
    expect(cut.prompt_eval_count).to.equal(CONTEXT - 1);
    expect(norm(cut.embeddings[0]!)).to.be.closeTo(1, 1e-5);
    const small = await ollama.embed({ model: 'emb', input: longText(80), options: { num_ctx: 8, temperature: 0.1 } });
    expect(small.prompt_eval_count).to.equal(8);
    const refused = await api(server, 'POST', '/api/embed', { model: 'emb', input: ['ok', longText(80)], truncate: false }, null);
    expect(refused.status).to.equal(400);
    expect(Object.keys(refused.body)).to.deep.equal(['error']);
    expect(refused.body.error).to.include(`input[1] is`);
    const wide = await api(server, 'POST', '/api/embed', { model: 'emb', input: 'x', options: { num_ctx: CONTEXT + 1 } }, null);
    expect([wide.status, wide.body.error]).to.deep.equal([400, `options.num_ctx ${CONTEXT + 1} is larger than this server's context of ${CONTEXT} tokens per sequence (runtime.context_size); send num_ctx <= ${CONTEXT}.`]);
    expect((await api(server, 'POST', '/api/embed', { model: 'emb', input: 'x', dimensions: 4 }, null)).status).to.equal(400);
    const empty = await ollama.embed({ model: 'emb', input: [] });
    expect(empty.embeddings).to.deep.equal([]);
    expect(await ollama.embeddings({ model: 'emb', prompt: '' })).to.deep.equal({ embedding: [] });
    const gen = await api(server, 'POST', '/api/embed', { model: 'gen', input: 'x' }, null);
    expect(gen.status).to.equal(400);
    expect(gen.body.error).to.include("Model 'gen' does not have the embeddings capability");
    expect((await api(server, 'POST', '/api/embeddings', { model: 'nope', prompt: 'x' }, null)).status).to.equal(404);
  });

  it('counts tokens and inputs in /metrics and writes an audit line', async () => {
    const before = {
      tokens: await metric(server.url, 'inferflux_model_prompt_tokens_total{model="emb",backend="cpu"}'),
      inputs: await metric(server.url, 'inferflux_embedding_inputs_total{model="emb"}'),
    };
    const res = await fetch(`${server.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'emb-audit-1' },
      body: JSON.stringify({ model: 'emb', input: ['one two', 'three'] }),
    });
    const body = (await res.json()) as { usage: { prompt_tokens: number } };
    expect(await metric(server.url, 'inferflux_model_prompt_tokens_total{model="emb",backend="cpu"}')).to.equal(before.tokens + body.usage.prompt_tokens);
    expect(await metric(server.url, 'inferflux_embedding_inputs_total{model="emb"}')).to.equal(before.inputs + 2);
    expect(await metric(server.url, 'inferflux_requests_total{route="/v1/embeddings",model="emb",backend="cpu",status="200"}')).to.be.greaterThan(0);
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !line; i++) {
      line = readFileSync(join(server.dir, 'audit.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"emb-audit-1"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
      if (!line) await new Promise((r) => setTimeout(r, 100));
    }
    expect(line).to.include({ event: 'completion', route: '/v1/embeddings', model: 'emb', status: 200, promptTokens: body.usage.prompt_tokens, completionTokens: 0 });
    expect(line!.prompt).to.match(/^[0-9a-f]{64}$/); // a hash, not the text
  });

  it('a full queue is 429 queue_full with Retry-After; the rest are answered', async () => {
    // Ollama's route truncates each input to the context: every input costs a full context.
    const heavy = { model: 'emb', input: Array.from({ length: BATCH_MAX }, (_, i) => longText(80, i)) };
    const all = await Promise.all(Array.from({ length: 8 }, () => api(server, 'POST', '/api/embed', heavy, null)));
    const statuses = all.map((r) => r.status);
    expect(statuses.filter((s) => s !== 200 && s !== 429), statuses.join()).to.deep.equal([]);
    const full = all.filter((r) => r.status === 429);
    expect(full.length, statuses.join()).to.be.greaterThan(0);
    expect(full[0]!.body.error).to.include('The embedding queue is full');
    expect(full[0]!.headers.get('retry-after')).to.equal('1');
    expect(statuses.filter((s) => s === 200).length).to.be.at.least(2); // one running, one waiting
  });

  it('embeddings do not stall a running stream: its token gaps stay bounded and both finish', async () => {
    let done = false;
    let embedded = 0;
    const took: number[] = [];
    const heavy = { model: 'emb', input: Array.from({ length: BATCH_MAX }, (_, i) => longText(80, i)) };
    // Two clients embedding back to back (one running, one queued) for as long as the stream runs;
    // bounded at 60 requests.
    const embedLoop = async () => {
      while (!done && embedded < 60) {
        const t0 = performance.now();
        const r = await api(server, 'POST', '/api/embed', heavy, null);
        expect(r.status).to.equal(200);
        took.push(performance.now() - t0);
        embedded++;
      }
    };
    const load = Promise.all([embedLoop(), embedLoop()]);
    while (embedded === 0) await new Promise((r) => setTimeout(r, 10));
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gen', messages: [{ role: 'user', content: 'go' }], max_tokens: 400, ignore_eos: true, temperature: 0, stream: true }),
    });
    expect(res.status).to.equal(200);
    const gaps: number[] = [];
    let last = performance.now();
    const during = embedded;
    const reader = res.body!.getReader();
    let text = '';
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      const now = performance.now();
      gaps.push(now - last);
      last = now;
      text += Buffer.from(value).toString();
    }
    const alongside = embedded - during;
    done = true;
    await load;
    expect(text).to.include('data: [DONE]');
    expect(alongside, 'embedding requests finished while the stream ran').to.be.greaterThan(0);
    const worst = Math.max(...gaps.slice(1));
    // Loose on purpose (a shared 2-core machine): a stall behind the embedding pool would be whole
    // embedding requests long; a step of the decode loop is milliseconds.
    expect(worst, `worst gap ${worst.toFixed(0)} ms over ${gaps.length} chunks`).to.be.below(5000);
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    console.log(
      `      stream: ${gaps.length} chunks, worst gap ${worst.toFixed(0)} ms, median ${med(gaps).toFixed(1)} ms; ` +
        `${alongside} embedding requests (${BATCH_MAX} x ${CONTEXT - 1} tokens, median ${med(took).toFixed(0)} ms each) finished meanwhile`,
    );
  });
});
