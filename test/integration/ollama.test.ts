/**
 * Ollama's API on the real server (actors + llama.cpp on the generated tiny model), driven by the
 * official `ollama` npm client unchanged: chat and generate (NDJSON streamed and not), list, show,
 * ps, version, and the bad-input cases, whose message must reach the client's `ResponseError`.
 */
import { expect } from 'chai';
import { Ollama } from 'ollama';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import type { RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** The client's `ResponseError` (the package does not export the class). */
interface ResponseError extends Error {
  error: string;
  status_code: number;
}

/** The error a client call rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<ResponseError> {
  try {
    await p;
  } catch (err) {
    expect((err as Error).name).to.equal('ResponseError');
    expect((err as ResponseError).message).to.equal((err as ResponseError).error);
    return err as ResponseError;
  }
  throw new Error('expected the call to fail');
}

function expectStats(r: Record<string, unknown>, numPredict: number): void {
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count', 'eval_duration']) {
    expect(r[k], k).to.be.a('number');
    expect(Number.isInteger(r[k]), `${k} is an integer`).to.equal(true);
  }
  expect(r.prompt_eval_count as number).to.be.greaterThan(0);
  expect(r.eval_count as number).to.be.within(1, numPredict);
  expect(r.done_reason).to.be.oneOf(['stop', 'length']);
  if (r.done_reason === 'length') expect(r.eval_count).to.equal(numPredict);
  // Nanoseconds: the whole request took longer than decoding alone, and more than a microsecond.
  expect(r.total_duration as number).to.be.greaterThan(r.eval_duration as number);
  expect(r.total_duration as number).to.be.greaterThan(1000);
  expect(r.created_at).to.match(ISO);
}

describe('Ollama API on the real engine (ollama npm client)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let ollama: Ollama;

  before(async () => {
    server = await protocolServer();
    ollama = new Ollama({ host: server.url, headers: { authorization: `Bearer ${KEYS.all}` } });
  });

  it('version, list, ps and show describe the GGUF model', async () => {
    expect(await ollama.version()).to.deep.equal({ version: '0.1.0' });
    const { models } = await ollama.list();
    expect(models).to.have.length(1);
    const m = models[0]!;
    expect(m).to.include({ name: `${MODEL}:latest`, model: `${MODEL}:latest` });
    expect(m.size).to.be.greaterThan(1000);
    expect(m.digest).to.match(/^[0-9a-f]{64}$/);
    expect(String(m.modified_at)).to.match(ISO);
    expect(m.details).to.include({ parent_model: '', format: 'gguf', family: 'llama' });
    expect(m.details.families).to.deep.equal(['llama']);
    expect(m.details.parameter_size).to.match(/^\d+(\.\d)?[KMB]$/);
    expect(m.details.quantization_level).to.be.a('string').and.not.equal('unknown');

    const ps = await ollama.ps();
    expect(ps.models).to.have.length(1);
    expect(ps.models[0]).to.include({ name: `${MODEL}:latest`, size_vram: 0, digest: m.digest });
    expect((ps.models[0] as unknown as { context_length: number }).context_length).to.equal(2048);

    const show = await ollama.show({ model: `${MODEL}:latest` });
    expect(show.details).to.deep.equal(m.details);
    expect(show.template).to.include('<|im_start|>');
    const info = show.model_info as unknown as Record<string, unknown>;
    expect(info['general.architecture']).to.equal('llama');
    expect(info['llama.context_length']).to.be.a('number');
    // Not verbose: the vocabulary comes back empty, as Ollama does; verbose returns it.
    expect(info['tokenizer.ggml.tokens']).to.deep.equal([]);
    const verbose = await ollama.show({ model: MODEL, verbose: true } as never);
    expect((verbose.model_info as unknown as Record<string, unknown[]>)['tokenizer.ggml.tokens']!.length).to.be.greaterThan(100);
  });

  it('chat, not streamed: one object with the message, done_reason and nanosecond stats', async () => {
    const r = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Say hello.' }], stream: false, options: { num_predict: 8, temperature: 0 } });
    expect(r.model).to.equal(MODEL);
    expect(r.done).to.equal(true);
    expect(r.message.role).to.equal('assistant');
    expect(r.message.content).to.be.a('string').and.not.equal('');
    expectStats(r as unknown as Record<string, unknown>, 8);
  });

  it('chat, streamed: NDJSON pieces, then a final done line; the text equals the unstreamed one (greedy)', async () => {
    const ask = { model: `${MODEL}:latest`, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Count to three.' }], options: { num_predict: 12, temperature: 0, seed: 7 } };
    const whole = await ollama.chat({ ...ask, stream: false });
    const parts = [];
    for await (const part of await ollama.chat({ ...ask, stream: true })) parts.push(part);
    expect(parts.length).to.be.greaterThan(1);
    const last = parts.at(-1)!;
    expect(last.done).to.equal(true);
    expect(last.message).to.deep.equal({ role: 'assistant', content: '' });
    expectStats(last as unknown as Record<string, unknown>, 12);
    for (const p of parts.slice(0, -1)) {
      expect(p.done).to.equal(false);
      expect(p.model).to.equal(`${MODEL}:latest`);
    }
    expect(parts.map((p) => p.message.content).join('')).to.equal(whole.message.content);
    expect(last.eval_count).to.equal(whole.eval_count);
  });

  it('generate: templated with system, raw, streamed and not', async () => {
    const r = await ollama.generate({ model: MODEL, prompt: 'Why is the sky blue?', system: 'Answer in one word.', stream: false, options: { num_predict: 6, temperature: 0 } });
    expect(r.response).to.be.a('string').and.not.equal('');
    expectStats(r as unknown as Record<string, unknown>, 6);
    const raw = await ollama.generate({ model: MODEL, prompt: 'Once upon a time', raw: true, stream: false, options: { num_predict: 6, temperature: 0 } });
    // Raw skips the chat template: fewer prompt tokens than the templated prompt would have.
    const templated = await ollama.generate({ model: MODEL, prompt: 'Once upon a time', stream: false, options: { num_predict: 6, temperature: 0 } });
    expect(raw.prompt_eval_count).to.be.lessThan(templated.prompt_eval_count);
    let text = '';
    let final;
    for await (const part of await ollama.generate({ model: MODEL, prompt: 'Once upon a time', raw: true, stream: true, options: { num_predict: 6, temperature: 0 } })) {
      text += part.response;
      if (part.done) final = part;
    }
    expect(text).to.equal(raw.response);
    expect(final!.eval_count).to.equal(raw.eval_count);
    // An empty prompt "loads" the model: models here are always loaded.
    const load = await ollama.generate({ model: MODEL, prompt: '', stream: false, keep_alive: '5m' });
    expect(load).to.include({ model: MODEL, response: '', done: true, done_reason: 'load' });
  });

  it('format: a JSON schema or "json" constrains the answer (grammar), streamed and not', async () => {
    const schema = { type: 'object', properties: { colour: { enum: ['red', 'green'] }, n: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['colour', 'n'] };
    for (const seed of [1, 2, 3]) {
      const r = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'colour?' }], format: schema, stream: false, options: { seed, num_predict: 200 } });
      const v = JSON.parse(r.message.content) as { colour: string; n: number };
      expect(['red', 'green']).to.include(v.colour);
      expect(v.n).to.be.within(0, 9);
      expect(r.done_reason).to.equal('stop');
    }
    let text = '';
    for await (const part of await ollama.generate({ model: MODEL, prompt: 'n?', format: { type: 'integer', minimum: 10, maximum: 99 }, stream: true, options: { seed: 4 } })) text += part.response;
    expect(Number(text)).to.be.within(10, 99);
  });

  it('bad input reaches ResponseError with the server message and status', async () => {
    const chat = (extra: Record<string, unknown>) => ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: false, ...extra } as never);
    let e = await rejection(chat({ format: { type: 'array', uniqueItems: true } }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include('uniqueItems');
    e = await rejection(chat({ format: 42 }));
    expect(e.error).to.include("'format'");
    e = await rejection(chat({ model: 'nope' }));
    expect(e.status_code).to.equal(404);
    expect(e.error).to.equal("The model 'nope' does not exist.");
    e = await rejection(chat({ options: { num_ctx: 1_000_000 } }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include('options.num_ctx 1000000 is larger than');
    // A smaller num_ctx is honoured (the server's context is larger); nothing is cut.
    const ok = await chat({ options: { num_ctx: 1024, num_predict: 2 } });
    expect((ok as unknown as { done: boolean }).done).to.equal(true);
    e = await rejection(chat({ options: { temperature: 5 } }));
    expect(e.error).to.include("'options.temperature'");
    e = await rejection(chat({ options: { mirostat: 2 } }));
    expect(e.error).to.include('options.mirostat is not supported');
    // Every option and field Ollama documents is named: anything else is refused, never dropped.
    e = await rejection(chat({ options: { temprature: 0.1 } }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include("Unrecognized request argument supplied: 'options.temprature'");
    e = await rejection(chat({ seeed: 4 }));
    expect(e.error).to.include("Unrecognized request argument supplied: 'seeed'");
    e = await rejection(chat({ options: { repeat_last_n: 32 } }));
    expect(e.error).to.include('options.repeat_last_n 32 is not supported');
    e = await rejection(chat({ options: { vocab_only: true } }));
    expect(e.error).to.include('options.vocab_only is not supported');
    // keep_alive 0 asks to unload the model for everyone: refused, naming who can.
    e = await rejection(ollama.generate({ model: MODEL, prompt: '', stream: false, keep_alive: '0s' }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include("'keep_alive' 0 asks to unload the model");
    e = await rejection(chat({ keep_alive: 0 }));
    expect(e.error).to.include("'keep_alive' 0");
    // What cannot change an answer here is met as it is: hardware options, num_keep, keeping the model loaded.
    const fine = await chat({ keep_alive: '1h30m', options: { num_thread: 3, num_gpu: 0, use_mmap: true, numa: false, num_keep: 4, mirostat_tau: 5, num_predict: 2 } });
    expect((fine as unknown as { done: boolean }).done).to.equal(true);
    // repeat_last_n 0 turns the penalties off: the same answer as repeat_penalty 1 (greedy).
    const greedy = { temperature: 0, num_predict: 48, repeat_penalty: 2, frequency_penalty: 2 };
    const off = await chat({ options: { ...greedy, repeat_last_n: 0 } });
    const none = await chat({ options: { ...greedy, repeat_penalty: 1, frequency_penalty: 0 } });
    const penalised = await chat({ options: greedy });
    const text = (r: unknown) => (r as { message: { content: string } }).message.content;
    expect(text(penalised), 'the penalty must matter for this check to mean anything').to.not.equal(text(none));
    expect(text(off)).to.equal(text(none));
    e = await rejection(chat({ tools: [{ type: 'retrieval', function: { name: 'f' } }] }));
    expect(e.error).to.include("'tools[0].type' is not supported");
    e = await rejection(ollama.generate({ model: MODEL, prompt: 'x', template: '{{ .Prompt }}', stream: false }));
    expect(e.error).to.include("'template' is not supported");
    e = await rejection(ollama.generate({ model: MODEL, prompt: 'x', images: ['aGk='], stream: false }));
    expect(e.status_code).to.equal(422);
    expect(e.error).to.include("does not support image input (capability 'vision')");
    e = await rejection(ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 5000 } } as never));
    expect(e.status_code).to.equal(400);
    // Within the option's bounds but past the context: the message names Ollama's field.
    e = await rejection(ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: false, options: { num_predict: 2040 } } as never));
    expect(e.error).to.include('plus options.num_predict (2040) exceeds');
    e = await rejection(ollama.embed({ model: MODEL, input: 'hi' }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include(`Model '${MODEL}' does not have the embeddings capability`);
    // Model management needs `admin`: refused (403) for a generate|read key, 501 for an admin one.
    e = await rejection(ollama.delete({ model: MODEL }));
    expect(e.status_code).to.equal(403);
    const admin = new Ollama({ host: server.url, headers: { authorization: `Bearer ${KEYS.admin}` } });
    // The served model is configured, not pulled: delete names the local models directory.
    e = await rejection(admin.delete({ model: MODEL }));
    expect(e.status_code).to.equal(404);
    expect(e.error).to.include('is not in the local models directory');
    // A bare name is not a hub reference (InferFlux pulls GGUFs from a Hugging Face-style hub).
    e = await rejection(admin.pull({ model: MODEL }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include('owner/repo[:quant]');
    e = await rejection(admin.push({ model: MODEL }));
    expect(e.status_code).to.equal(501);
    expect(e.error).to.include('POST /api/pull').and.include('POST /v1/admin/models');
    e = await rejection(ollama.show({ model: 'nope' }));
    expect(e.status_code).to.equal(404);
  });

  it("answers Ollama's heartbeat: HEAD / and GET / are 200 without a key", async () => {
    const get = await fetch(`${server.url}/`);
    expect(get.status).to.equal(200);
    expect(get.headers.get('content-type')).to.equal('text/plain; charset=utf-8');
    const text = await get.text();
    expect(text).to.match(/^InferFlux is running/);
    const head = await fetch(`${server.url}/`, { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(head.headers.get('content-length')).to.equal(String(Buffer.byteLength(text)));
    expect(await head.text()).to.equal('');
    // HEAD is served only there: elsewhere it is a 405 naming the methods that are.
    const other = await fetch(`${server.url}/api/tags`, { method: 'HEAD' });
    expect(other.status).to.equal(405);
  });

  it('an unknown /api path is a 404 in Ollama shape naming the APIs served', async () => {
    const res = await fetch(`${server.url}/api/nope`);
    expect(res.status).to.equal(404);
    const body = (await res.json()) as { error: string };
    expect(Object.keys(body)).to.deep.equal(['error']);
    expect(body.error).to.include('No route for GET /api/nope');
    expect(body.error).to.include('Ollama /api');
  });
});
