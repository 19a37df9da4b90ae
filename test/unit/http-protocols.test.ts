/**
 * The new protocols' shapes on the real HTTP edge with a scripted gateway: the mid-stream error
 * each one's client expects (Ollama's `{"error"}` line, Anthropic's `error` event, the Responses
 * `error` event with its sequence number), read by the official clients; and how each maps its
 * fields onto the generation input.
 */
import Anthropic from '@anthropic-ai/sdk';
import { expect } from 'chai';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { InferFluxError } from '../../src/errors.js';
import { DEFAULT_SAMPLING } from '../../src/runtime/sampling.js';
import { CREATED, emitText, sseEvents, startServer, type Script, type TestServer } from './http-fixtures.js';

/** Two pieces of text, then the engine worker dies. */
const textThenCrash: Script = (input, sink) => {
  const steps = [
    () => sink.onStart({ model: input.model ?? 'tiny', promptTokens: 5, created: CREATED }),
    () => sink.onText(0, 'Hel'),
    () => sink.onText(0, 'lo'),
    () => sink.onError(new InferFluxError('worker_crashed', 'The engine worker stopped.')),
  ];
  const next = () => {
    const s = steps.shift();
    if (!s) return;
    s();
    setImmediate(next);
  };
  setImmediate(next);
};

describe('http: Ollama, Anthropic and Responses streams on the edge', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    t.gateway.script = textThenCrash;
  });
  after(() => t.server.close());

  const post = (path: string, body: unknown) => fetch(`${t.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('maps each protocol onto GenerateInput: prompt, sampling with the protocol defaults', async () => {
    t.gateway.script = emitText(['ok']);
    t.gateway.inputs = [];
    try {
      await post('/api/chat', { model: 'tiny:latest', stream: false, messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }] });
      await post('/api/generate', {
        model: 'tiny',
        stream: false,
        prompt: 'p',
        system: 's',
        options: { num_predict: 7, temperature: 0.2, top_k: 3, top_p: 0.5, min_p: 0.1, seed: 9, stop: ['x'], repeat_penalty: 1.3, presence_penalty: 0.4, frequency_penalty: 0.6, num_ctx: 1024, num_gpu: 99 },
      });
      await post('/api/generate', { model: 'tiny', stream: false, prompt: 'raw text', raw: true, options: { num_predict: -1 } });
      await post('/v1/messages', { model: 'tiny', max_tokens: 5, system: [{ type: 'text', text: 'sys' }], stop_sequences: ['END'], top_k: 2, messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }] });
      await post('/v1/responses', { model: 'tiny', instructions: 'ins', input: 'in', max_output_tokens: 6, top_p: 0.3 });
      const [chat, gen, raw, anthropic, responses] = t.gateway.inputs;
      // Ollama: `name:latest` resolves to the id; absent options take Ollama's defaults.
      expect(chat!.model).to.equal('tiny');
      expect(chat!.prompt).to.deep.equal({ kind: 'chat', messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }] });
      expect(chat!.params).to.deep.equal({ ...DEFAULT_SAMPLING, temperature: 0.8, topK: 40, topP: 0.9, repeatPenalty: 1.1 });
      expect(gen!.prompt).to.deep.equal({ kind: 'chat', messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'p' }] });
      expect(gen!.params).to.deep.equal({ ...DEFAULT_SAMPLING, maxTokens: 7, temperature: 0.2, topK: 3, topP: 0.5, minP: 0.1, seed: 9, stop: ['x'], repeatPenalty: 1.3, presencePenalty: 0.4, frequencyPenalty: 0.6 });
      expect(raw!.prompt).to.deep.equal({ kind: 'text', text: 'raw text' });
      expect(raw!.params.maxTokens).to.equal(null);
      // Anthropic: system first, text blocks joined, its defaults (temperature 1, no top_p cut).
      expect(anthropic!.prompt).to.deep.equal({ kind: 'chat', messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'ab' }] });
      expect(anthropic!.params).to.deep.equal({ ...DEFAULT_SAMPLING, maxTokens: 5, topK: 2, stop: ['END'] });
      expect(responses!.prompt).to.deep.equal({ kind: 'chat', messages: [{ role: 'system', content: 'ins' }, { role: 'user', content: 'in' }] });
      expect(responses!.params).to.deep.equal({ ...DEFAULT_SAMPLING, maxTokens: 6, topP: 0.3 });
    } finally {
      t.gateway.script = textThenCrash;
    }
  });

  it('Ollama: pieces as NDJSON lines, then an {"error"} line the ollama client throws on', async () => {
    const r = await post('/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).to.equal(200);
    const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => (l.message as { content: string } | undefined)?.content ?? null)).to.deep.equal(['Hel', 'lo', null]);
    expect(lines.at(-1)).to.deep.equal({ error: 'The engine worker stopped.' });
    const ollama = new Ollama({ host: t.base });
    let text = '';
    try {
      for await (const part of await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], stream: true })) text += part.message.content;
      expect.fail('the stream should throw');
    } catch (err) {
      expect((err as Error).message).to.equal('The engine worker stopped.');
    }
    expect(text).to.equal('Hello');
  });

  it('Anthropic: the event sequence, then an error event in its shape; the SDK raises it', async () => {
    const r = await post('/v1/messages', { model: 'tiny', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], stream: true });
    const body = await r.text();
    const names = [...body.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(names).to.deep.equal(['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'error']);
    expect(sseEvents(body).at(-1)).to.deep.equal({ type: 'error', error: { type: 'overloaded_error', message: 'The engine worker stopped.' } });
    const client = new Anthropic({ baseURL: t.base, apiKey: 'x', maxRetries: 0 });
    try {
      for await (const _ of await client.messages.create({ model: 'tiny', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], stream: true })) void _;
      expect.fail('the stream should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(Anthropic.APIError);
      expect((err as InstanceType<typeof Anthropic.APIError>).apiMessage).to.equal('The engine worker stopped.');
    }
  });

  it('Responses: numbered events, then a numbered error event; the SDK raises it', async () => {
    const r = await post('/v1/responses', { model: 'tiny', input: 'hi', stream: true });
    const events = sseEvents(await r.text()) as { type: string; sequence_number: number; message?: string; code?: string }[];
    expect(events.map((e) => e.type)).to.deep.equal([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'error',
    ]);
    expect(events.map((e) => e.sequence_number)).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
    expect(events.at(-1)).to.include({ code: 'worker_crashed', message: 'The engine worker stopped.' });
    const client = new OpenAI({ baseURL: `${t.base}/v1`, apiKey: 'x', maxRetries: 0 });
    try {
      for await (const _ of await client.responses.create({ model: 'tiny', input: 'hi', stream: true })) void _;
      expect.fail('the stream should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(OpenAI.APIError);
      expect((err as Error).message).to.include('The engine worker stopped.');
    }
  });
});
