import { expect } from 'chai';
import OpenAI from 'openai';
import { InferFluxError } from '../../src/errors.js';
import { CREATED, json, sseEvents, startServer, type TestServer } from './http-fixtures.js';

function post(t: TestServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(t.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Drops the random id, after checking its prefix. */
function withoutId(body: Record<string, unknown>, prefix: string): Record<string, unknown> {
  expect(body.id).to.be.a('string').and.match(new RegExp(`^${prefix}[0-9a-f]{32}$`));
  const { id: _id, ...rest } = body;
  return rest;
}

describe('http: OpenAI routes', () => {
  let t: TestServer;
  let client: OpenAI;
  beforeEach(async () => {
    t = await startServer();
    client = new OpenAI({ baseURL: `${t.base}/v1`, apiKey: 'x', maxRetries: 0 });
  });
  afterEach(() => t.server.close(100));

  it('chat completion, non-stream: the whole body, and the GenerateInput it produced', async () => {
    const r = await post(t, '/v1/chat/completions', {
      model: 'tiny',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Hi ' }, { type: 'text', text: 'there' }] },
      ],
      max_tokens: 20,
      stop: 'END',
      seed: 7,
      n: 2,
      top_k: 40,
    });
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.equal('application/json');
    expect(r.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
    expect(withoutId(await json(r), 'chatcmpl-')).to.deep.equal({
      object: 'chat.completion',
      created: CREATED,
      model: 'tiny',
      system_fingerprint: 'fp_inferflux',
      choices: [0, 1].map((index) => ({
        index,
        message: { role: 'assistant', content: 'Hello world' },
        logprobs: null,
        finish_reason: 'stop',
      })),
      usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9, prompt_tokens_details: { cached_tokens: 0 } },
    });
    const input = t.gateway.inputs[0]!;
    expect(input.requestId).to.equal(r.headers.get('x-request-id'));
    expect(input).to.deep.include({
      model: 'tiny',
      n: 2,
      prompt: {
        kind: 'chat',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi there' },
        ],
      },
      params: {
        maxTokens: 20,
        temperature: 1,
        topP: 1,
        topK: 40,
        minP: 0,
        seed: 7,
        stop: ['END'],
        presencePenalty: 0,
        frequencyPenalty: 0,
        repeatPenalty: 1,
        logitBias: [],
        ignoreEos: false,
        minTokens: 0,
        logprobs: null,
        grammar: null,
      },
    });
  });

  it('text completion, non-stream, via the LM Studio alias too (plus its stats)', async () => {
    for (const path of ['/v1/completions', '/api/v0/completions']) {
      const r = await post(t, path, { prompt: ['Once'], max_tokens: 3 });
      expect(r.status).to.equal(200);
      const lmStudio =
        path === '/api/v0/completions'
          ? {
              // The fake engine reports no timings: zero durations.
              stats: { tokens_per_second: 0, time_to_first_token: 0, generation_time: 0, stop_reason: 'eosFound' },
              model_info: { arch: 'llama', quant: 'F32', format: 'gguf', context_length: 2048 },
              runtime: { name: 'inferflux-llama.cpp', version: '0.1.0', supported_formats: ['gguf'] },
            }
          : {};
      expect(withoutId(await json(r), 'cmpl-')).to.deep.equal({
        object: 'text_completion',
        created: CREATED,
        model: 'tiny',
        system_fingerprint: 'fp_inferflux',
        choices: [{ index: 0, text: 'Hello world', logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } },
        ...lmStudio,
      });
    }
    expect(t.gateway.inputs[0]!.prompt).to.deep.equal({ kind: 'text', text: 'Once' });
    expect(t.gateway.inputs[0]!.model).to.equal(undefined);
    // Token-id prompts pass through; the default max_tokens for completions is OpenAI's 16.
    await json(await post(t, '/v1/completions', { prompt: [1, 2, 3] }));
    expect(t.gateway.inputs[2]!.prompt).to.deep.equal({ kind: 'tokens', tokens: [1, 2, 3] });
    expect(t.gateway.inputs[2]!.params.maxTokens).to.equal(16);
  });

  it('the openai client reads both non-stream shapes', async () => {
    const chat = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.choices[0]!.message.content).to.equal('Hello world');
    const cmpl = await client.completions.create({ model: 'tiny', prompt: 'hi' });
    expect(cmpl.choices[0]!.text).to.equal('Hello world');
  });

  it('chat stream: the exact chunk sequence, with include_usage', async () => {
    const r = await post(t, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.equal('text/event-stream');
    expect(r.headers.get('cache-control')).to.equal('no-cache');
    expect(r.headers.get('x-accel-buffering')).to.equal('no');
    const events = sseEvents(await r.text());
    expect(events.at(-1)).to.equal('[DONE]');
    const chunks = events.slice(0, -1) as Record<string, unknown>[];
    const id = chunks[0]!.id as string;
    expect(id).to.match(/^chatcmpl-/);
    const base = { id, object: 'chat.completion.chunk', created: CREATED, model: 'tiny', system_fingerprint: 'fp_inferflux' };
    const choice = (delta: object, finish_reason: string | null) => [{ index: 0, delta, logprobs: null, finish_reason }];
    expect(chunks).to.deep.equal([
      { ...base, choices: choice({ role: 'assistant', content: '' }, null), usage: null },
      { ...base, choices: choice({ content: 'Hello' }, null), usage: null },
      { ...base, choices: choice({ content: ' world' }, null), usage: null },
      { ...base, choices: choice({}, 'stop'), usage: null },
      { ...base, choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } } },
    ]);
  });

  it('completion stream without include_usage has no usage field', async () => {
    const r = await post(t, '/v1/completions', { prompt: 'x', stream: true });
    const events = sseEvents(await r.text());
    const chunks = events.slice(0, -1) as Record<string, unknown>[];
    const base = { id: chunks[0]!.id, object: 'text_completion', created: CREATED, model: 'tiny', system_fingerprint: 'fp_inferflux' };
    expect(events).to.deep.equal([
      { ...base, choices: [{ index: 0, text: 'Hello', logprobs: null, finish_reason: null }] },
      { ...base, choices: [{ index: 0, text: ' world', logprobs: null, finish_reason: null }] },
      { ...base, choices: [{ index: 0, text: '', logprobs: null, finish_reason: 'stop' }] },
      '[DONE]',
    ]);
  });

  it('the openai client streams chat', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: unknown;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).to.equal('Hello world');
    expect(usage).to.deep.equal({ prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } });
  });

  it('malformed JSON is 400 invalid_json', async () => {
    const r = await post(t, '/v1/chat/completions', '{"messages": [');
    expect(r.status).to.equal(400);
    const body = await json(r);
    expect(body.error).to.include({ type: 'invalid_request_error', code: 'invalid_json', param: null });
  });

  it('schema violations are 400 invalid_request naming the param', async () => {
    const cases: [unknown, string][] = [
      [{ messages: [{ role: 'user', content: 'x' }], max_tokens: 100000 }, 'max_tokens'],
      [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
      [{ messages: [] }, 'messages'],
      [{ model: 'tiny' }, 'messages'],
      [{ messages: [{ role: 'user' }] }, 'messages[0].content'],
      [{ messages: [{ role: 'user', content: [{ type: 'video' }] }] }, 'messages[0].content[0].type'],
      [{ messages: [{ role: 'user', content: 'x' }], n: 9 }, 'n'],
      [{ messages: [{ role: 'user', content: 'x' }], temperature: 3 }, 'temperature'],
      [{ messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ messages: [{ role: 'user', content: 'x' }], stop: 5 }, 'stop'],
      [{ messages: [{ role: 'user', content: 'x' }], logit_bias: { abc: 1 } }, 'logit_bias'],
      [{ messages: [{ role: 'user', content: 'x' }], logit_bias: { '15': 101 } }, 'logit_bias.15'],
      [{ messages: Array.from({ length: 1025 }, () => ({ role: 'user', content: '' })) }, 'messages'],
    ];
    for (const [body, param] of cases) {
      const r = await post(t, '/v1/chat/completions', body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).to.equal(400);
      const { error } = await json(r);
      expect(error.code).to.equal('invalid_request');
      expect(error.param, JSON.stringify(body).slice(0, 80)).to.equal(param);
      expect(error.message).to.be.a('string').and.contain(param);
    }
    const r = await post(t, '/v1/completions', { prompt: ['a', 1] });
    expect((await json(r)).error.param).to.equal('prompt');
    expect(t.gateway.inputs).to.have.length(0);
  });

  it('maps gateway errors before the first byte to HTTP statuses', async () => {
    const cases: [InferFluxError, number][] = [
      [new InferFluxError('model_not_found', "The model 'x' does not exist.", { param: 'model' }), 404],
      [new InferFluxError('model_not_loaded'), 503],
      [new InferFluxError('context_length_exceeded'), 400],
      [new InferFluxError('queue_full', undefined, { retryAfter: 2 }), 429],
    ];
    for (const [err, status] of cases) {
      t.gateway.script = (_i, sink) => setImmediate(() => sink.onError(err));
      for (const stream of [false, true]) {
        const r = await post(t, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], stream });
        expect(r.status).to.equal(status);
        expect(await json(r)).to.deep.equal({ error: { message: err.message, type: err.type, param: err.param, code: err.code } });
        expect(r.headers.get('retry-after')).to.equal(err.retryAfter === undefined ? null : String(err.retryAfter));
      }
    }
    // A gateway that throws synchronously is an internal error, not a crash.
    t.gateway.script = () => {
      throw new Error('boom');
    };
    const r = await post(t, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] });
    expect(r.status).to.equal(500);
    expect((await json(r)).error.code).to.equal('internal_error');
  });

  it('openai client sees 404 model_not_found and 429 as APIErrors', async () => {
    t.gateway.script = (_i, sink) => sink.onError(new InferFluxError('model_not_found', undefined, { param: 'model' }));
    try {
      await client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] });
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(OpenAI.NotFoundError);
      expect((err as InstanceType<typeof OpenAI.APIError>).code).to.equal('model_not_found');
    }
  });

  it('a mid-stream error becomes an SSE error event the openai client raises', async () => {
    t.gateway.script = (input, sink) => {
      sink.onStart({ model: 'tiny', promptTokens: 1, created: CREATED });
      setImmediate(() => {
        sink.onText(0, 'partial');
        setImmediate(() => sink.onError(new InferFluxError('worker_crashed')));
      });
      void input;
    };
    const r = await post(t, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], stream: true });
    expect(r.status).to.equal(200);
    const events = sseEvents(await r.text());
    expect(events.at(-1)).to.deep.equal({
      error: { message: new InferFluxError('worker_crashed').message, type: 'service_unavailable', param: null, code: 'worker_crashed' },
    });
    expect(events).to.not.include('[DONE]');

    const stream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    try {
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(OpenAI.APIError);
      expect(text).to.equal('partial');
    }
    const metrics = await t.metrics.render();
    expect(metrics).to.contain('inferflux_errors_total{model="tiny",code="worker_crashed"} 2');
  });

  it('a client abort cancels the generation', async () => {
    let handleRef: import('./http-fixtures.js').FakeHandle | undefined;
    t.gateway.script = (_i, sink, handle) => {
      handleRef = handle;
      sink.onStart({ model: 'tiny', promptTokens: 1, created: CREATED });
      const tick = () => {
        if (handle.cancelled) return;
        sink.onText(0, 'tok ');
        setTimeout(tick, 5);
      };
      tick();
    };
    // A first stream that nobody reads stays in flight until close().
    await post(t, '/v1/completions', { prompt: 'x', stream: true });
    const ac = new AbortController();
    const r2 = await fetch(t.base + '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', stream: true }),
      signal: ac.signal,
    });
    const reader = r2.body!.getReader();
    await reader.read();
    const cancelled = t.gateway.handles[1]!.changed();
    ac.abort();
    await cancelled;
    expect(t.gateway.handles[1]!.cancelled).to.equal(true);
    // The first stream is still running; close() cuts it and that cancels it too.
    expect(handleRef).to.equal(t.gateway.handles[1]);
    await t.server.close(50);
    expect(t.gateway.handles[0]!.cancelled).to.equal(true);
  });
});
