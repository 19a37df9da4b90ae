/**
 * Anthropic's Messages API on the real server (actors + llama.cpp on the generated tiny model),
 * driven by the official `@anthropic-ai/sdk` client with an `x-api-key`: messages streamed and not
 * (the whole event sequence), stop sequences, count_tokens, and the bad-input cases, whose
 * message and Anthropic error type must reach the SDK's typed errors. `temperature`, `top_p` and
 * `top_k` are no longer in this SDK's types, but older clients send them, so they are still sent.
 */
import Anthropic from '@anthropic-ai/sdk';
import { expect } from 'chai';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import type { RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const KEY = KEYS.all;
const ASK = { model: MODEL, max_tokens: 16, temperature: 0, messages: [{ role: 'user' as const, content: 'Tell me a story.' }] };

async function rejection(p: Promise<unknown>): Promise<InstanceType<typeof Anthropic.APIError>> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(Anthropic.APIError);
    return err as InstanceType<typeof Anthropic.APIError>;
  }
  throw new Error('expected the call to fail');
}

describe('Anthropic Messages API on the real engine (@anthropic-ai/sdk)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: Anthropic;

  before(async () => {
    server = await protocolServer();
    client = new Anthropic({ baseURL: server.url, apiKey: KEY, maxRetries: 0 });
  });

  it('a message, not streamed: text block, stop_reason and usage', async () => {
    const m = await client.messages.create(ASK);
    expect(m.id).to.match(/^msg_[0-9a-f]{32}$/);
    expect(m).to.include({ type: 'message', role: 'assistant', model: MODEL, stop_sequence: null });
    expect(m.content).to.have.length(1);
    expect(m.content[0]!.type).to.equal('text');
    expect(m.stop_reason).to.be.oneOf(['end_turn', 'max_tokens']);
    expect(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0)).to.be.greaterThan(3);
    expect(m.usage.output_tokens).to.be.within(1, 16);
    if (m.stop_reason === 'max_tokens') expect(m.usage.output_tokens).to.equal(16);
  });

  it('streamed: the documented event sequence, and the same text as unstreamed (greedy)', async () => {
    const whole = await client.messages.create(ASK);
    const events = [];
    for await (const ev of await client.messages.create({ ...ASK, stream: true })) events.push(ev);
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'content_block_delta').length;
    expect(deltas).to.be.greaterThan(0);
    // The SDK swallows `ping`; the raw stream below shows it.
    const sequence = (ping: string[]) => ['message_start', 'content_block_start', ...ping, ...Array(deltas).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop'];
    expect(types).to.deep.equal(sequence([]));
    const raw = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ ...ASK, stream: true }),
    });
    expect(raw.headers.get('content-type')).to.equal('text/event-stream');
    const names = [...(await raw.text()).matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(names).to.deep.equal(sequence(['ping']));
    const start = events[0] as Anthropic.RawMessageStartEvent;
    expect(start.message).to.include({ role: 'assistant', model: MODEL, stop_reason: null });
    let text = '';
    for (const e of events) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
    expect(text).to.equal((whole.content[0] as Anthropic.TextBlock).text);
    const delta = events.at(-2) as Anthropic.RawMessageDeltaEvent;
    expect(delta.delta.stop_reason).to.equal(whole.stop_reason);
    expect(delta.usage.output_tokens).to.equal(whole.usage.output_tokens);
    // The SDK's own accumulator agrees.
    const final = await client.messages.stream(ASK).finalMessage();
    expect((final.content[0] as Anthropic.TextBlock).text).to.equal(text);
  });

  it('stop_sequences: stop_reason stop_sequence with the sequence, text cut before it', async () => {
    const long = await client.messages.create({ ...ASK, max_tokens: 24 });
    const text = (long.content[0] as Anthropic.TextBlock).text;
    expect(text.length, 'the tiny model says enough to pick a stop sequence from').to.be.greaterThan(6);
    const stop = text.slice(3, 5);
    for (const stream of [false, true]) {
      const m = stream
        ? await client.messages.stream({ ...ASK, max_tokens: 24, stop_sequences: ['never-appears', stop] }).finalMessage()
        : await client.messages.create({ ...ASK, max_tokens: 24, stop_sequences: ['never-appears', stop] });
      expect(m.stop_reason, `stream ${stream}`).to.equal('stop_sequence');
      expect(m.stop_sequence).to.equal(stop);
      expect((m.content[0] as Anthropic.TextBlock).text).to.equal(text.slice(0, text.indexOf(stop)));
    }
  });

  it('system blocks, multi-turn, and count_tokens matching the prompt a message uses', async () => {
    const req = {
      model: MODEL,
      system: [{ type: 'text' as const, text: 'You are terse.' }],
      messages: [
        { role: 'user' as const, content: 'Hi.' },
        { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'Hello.' }] },
        { role: 'user' as const, content: [{ type: 'text' as const, text: 'Again?' }] },
      ],
    };
    const count = await client.messages.countTokens(req);
    const m = await client.messages.create({ ...req, max_tokens: 4, temperature: 0, top_k: 5, top_p: 0.9, metadata: { user_id: 'u1' }, service_tier: 'auto' } as Anthropic.MessageCreateParamsNonStreaming);
    expect(count.input_tokens).to.equal(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0));
    const shorter = await client.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'Hi.' }] });
    expect(shorter.input_tokens).to.be.lessThan(count.input_tokens);
  });

  it('bad input: typed SDK errors carrying the server message and Anthropic error type', async () => {
    let e = await rejection(client.messages.create({ model: MODEL, messages: ASK.messages } as never));
    expect(e).to.be.instanceOf(Anthropic.BadRequestError);
    expect(e.apiMessage).to.equal("Missing required parameter: 'max_tokens'.");
    expect(e.type).to.equal('invalid_request_error');
    e = await rejection(client.messages.create({ ...ASK, tools: [{ type: 'bash_20250124', name: 'bash' }] }));
    expect(e.status).to.equal(400);
    expect(e.apiMessage).to.match(/^'tools\[0\]\.type' is not supported/);
    e = await rejection(client.messages.create({ ...ASK, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'aGk=' } }] }] }));
    expect(e.status).to.equal(422);
    expect(e.apiMessage).to.match(/^Model '[^']+' does not support image input \(capability 'vision'\)/);
    e = await rejection(client.messages.create({ ...ASK, temperature: 1.5 } as never));
    expect(e.apiMessage).to.include("'temperature'");
    // A field of Anthropic's API this server does not implement, or of no API: named, never dropped.
    e = await rejection(client.messages.create({ ...ASK, mcp_servers: [] } as never));
    expect(e.status).to.equal(400);
    expect(e.apiMessage).to.equal("Unrecognized request argument supplied: 'mcp_servers'. InferFlux does not implement it; remove it from the request.");
    e = await rejection(client.messages.countTokens({ model: MODEL, messages: ASK.messages, top_k: 3 } as never));
    expect(e.apiMessage).to.include("'top_k'");
    e = await rejection(client.messages.create({ ...ASK, messages: [...ASK.messages, { role: 'assistant', content: 'Once' }] }));
    expect(e.apiMessage).to.include('prefill');
    e = await rejection(client.messages.create({ ...ASK, model: 'nope' }));
    expect(e).to.be.instanceOf(Anthropic.NotFoundError);
    expect(e.type).to.equal('not_found_error');
    expect(e.apiMessage).to.equal("The model 'nope' does not exist.");
    e = await rejection(client.messages.create({ ...ASK, max_tokens: 4000 }));
    expect(e.status).to.equal(400);
    expect(e.apiMessage).to.include('exceeds');
    const stranger = new Anthropic({ baseURL: server.url, apiKey: 'sk-wrong-key-000000000000', maxRetries: 0 });
    e = await rejection(stranger.messages.create(ASK));
    expect(e).to.be.instanceOf(Anthropic.AuthenticationError);
    expect(e.type).to.equal('authentication_error');
    e = await rejection(client.messages.countTokens({ model: MODEL, messages: [], tools: [] } as never));
    expect(e.status).to.equal(400);
  });
});
