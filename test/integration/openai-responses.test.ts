/**
 * OpenAI's Responses API (stateless) on the real server (actors + llama.cpp on the generated tiny
 * model), driven by the `openai` client's `responses.create` and `responses.stream`: string and
 * item input, instructions, the numbered event sequence, incomplete on max_output_tokens,
 * `text.format` (grammar-constrained JSON, checked with ajv), the fields a stateless server refuses
 * and a field it does not know (a 400 naming it, never dropped).
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import type { RunningServer } from '../helpers/server.js';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { CONTRACT_SCHEMAS } from '../helpers/contract-schemas.js';

const MODEL = 'tiny-seed0';

async function rejection(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(OpenAI.APIError);
    return err as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error('expected the call to fail');
}

describe('OpenAI Responses API on the real engine (openai client)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    server = await protocolServer();
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.all, maxRetries: 0 });
  });

  it('string input, not streamed: a response with one output_text message and usage', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'Tell me a story.', max_output_tokens: 12, temperature: 0, store: false });
    expect(r.id).to.match(/^resp_[0-9a-f]{32}$/);
    expect(r).to.include({ object: 'response', model: MODEL, store: false, max_output_tokens: 12, temperature: 0 });
    expect(r.status).to.be.oneOf(['completed', 'incomplete']);
    expect(r.output).to.have.length(1);
    const msg = r.output[0] as OpenAI.Responses.ResponseOutputMessage;
    expect(msg).to.include({ type: 'message', role: 'assistant', status: 'completed' });
    expect(msg.content[0]!.type).to.equal('output_text');
    expect(r.output_text).to.equal((msg.content[0] as OpenAI.Responses.ResponseOutputText).text);
    expect(r.usage!.output_tokens).to.be.within(1, 12);
    expect(r.usage!.total_tokens).to.equal(r.usage!.input_tokens + r.usage!.output_tokens);
    if (r.status === 'incomplete') {
      expect(r.incomplete_details).to.deep.equal({ reason: 'max_output_tokens' });
      expect(r.usage!.output_tokens).to.equal(12);
    }
  });

  it('streamed: numbered events in the documented order; same text as unstreamed (greedy)', async () => {
    const ask = { model: MODEL, instructions: 'Be brief.', input: [{ role: 'user' as const, content: [{ type: 'input_text' as const, text: 'Hi.' }] }], max_output_tokens: 10, temperature: 0 };
    const whole = await client.responses.create(ask);
    const events = [];
    for await (const ev of await client.responses.create({ ...ask, stream: true })) events.push(ev);
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    expect(deltas).to.be.greaterThan(0);
    expect(types).to.deep.equal([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      `response.${whole.status}`,
    ]);
    expect(events.map((e) => e.sequence_number)).to.deep.equal(events.map((_, i) => i));
    const done = events.find((e) => e.type === 'response.output_text.done') as OpenAI.Responses.ResponseTextDoneEvent;
    expect(done.text).to.equal(whole.output_text);
    const final = await client.responses.stream(ask).finalResponse();
    expect(final.output_text).to.equal(whole.output_text);
    expect(final.usage!.output_tokens).to.equal(whole.usage!.output_tokens);
  });

  it('multi-turn items with an assistant output_text turn', async () => {
    const r = await client.responses.create({
      model: MODEL,
      input: [
        { role: 'user', content: 'Hi.' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello.', annotations: [] }] } as never,
        { role: 'user', content: 'Again.' },
      ],
      max_output_tokens: 4,
    });
    expect(r.output_text).to.be.a('string');
    expect(r.usage!.input_tokens).to.be.greaterThan(10);
  });

  it('refuses what a stateless server cannot honour, naming the field', async () => {
    const base = { model: MODEL, input: 'hi', max_output_tokens: 4 };
    const cases: [Record<string, unknown>, string][] = [
      [{ store: true }, "'store' is not supported"],
      [{ previous_response_id: 'resp_123' }, "'previous_response_id' is not supported"],
      [{ tools: [{ type: 'web_search' }] }, "'tools[0].type' is not supported"],
      [{ reasoning: { effort: 'high' } }, "'reasoning.effort' is not supported"],
      [{ text: { verbosity: 'low' } }, "'text.verbosity' is not supported"],
      [{ text: { format: { type: 'json_schema', name: 'x' } } }, "'text.format.schema'"],
      [{ text: { format: { type: 'json_schema', name: 'x', schema: { type: 'object' } } }, tool_choice: 'required', tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }] }, "cannot be combined with 'text.format'"],
      // Fields of OpenAI's API this server does not implement, and fields of no API: named, never dropped.
      [{ stream_options: { include_obfuscation: false } }, "Unrecognized request argument supplied: 'stream_options'"],
      [{ promt: 'typo' }, "Unrecognized request argument supplied: 'promt'"],
      [{ text: { format: { type: 'text' }, colour: 'red' } }, "Unrecognized request argument supplied: 'text.colour'"],
      [{ input: [{ type: 'web_search_call', id: 'ws_1', status: 'completed' }] }, "'input[0].type' is not supported"],
      [{ temperature: 3 }, "'temperature'"],
      // The context check names the field this API calls the cap.
      [{ max_output_tokens: 4000 }, 'plus max_output_tokens (4000) exceeds'],
    ];
    for (const [extra, message] of cases) {
      const e = await rejection(client.responses.create({ ...base, ...extra } as never));
      expect(e.status, JSON.stringify(extra)).to.equal(400);
      expect(e.message, JSON.stringify(extra)).to.include(message);
      expect(e.type).to.equal('invalid_request_error');
    }
    const image = await rejection(client.responses.create({ ...base, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:,' }] }] } as never));
    expect(image.status).to.equal(422);
    expect(image.code).to.equal('capability_not_supported');
    const e = await rejection(client.responses.create({ ...base, model: 'nope' }));
    expect(e.status).to.equal(404);
    expect(e.code).to.equal('model_not_found');
  });

  it('text.format: json_schema and json_object answers follow the schema (grammar), echoed on the response; no-op fields accepted', async () => {
    const schema = CONTRACT_SCHEMAS.colour as Record<string, unknown>;
    const format = { type: 'json_schema' as const, name: 'colour', schema, strict: true };
    for (const seed of [1, 2, 3]) {
      const r = await client.responses.create({
        model: MODEL,
        input: 'Name a colour as JSON.',
        max_output_tokens: 300,
        temperature: 0.9,
        text: { format, verbosity: 'medium' },
        // Accepted without effect: nothing here truncates, runs built-in tools or has capacity tiers.
        truncation: 'disabled',
        max_tool_calls: 2,
        service_tier: 'auto',
        include: ['reasoning.encrypted_content'],
        prompt_cache_key: 'k1',
        safety_identifier: 'user-1',
        store: false,
        metadata: { seed: String(seed) },
      } as never);
      expect(r.status, r.output_text).to.equal('completed');
      const v = validateOutput(schema, r.output_text);
      expect(v.valid, `${JSON.stringify(v)}: ${r.output_text}`).to.equal(true);
      expect(r.text!.format).to.deep.equal(format);
    }
    const events: string[] = [];
    let done = '';
    for await (const ev of await client.responses.create({ model: MODEL, input: 'json', max_output_tokens: 300, temperature: 0.7, text: { format: { type: 'json_object' } }, stream: true })) {
      events.push(ev.type);
      if (ev.type === 'response.output_text.done') done = ev.text;
      if (ev.type === 'response.completed' || ev.type === 'response.incomplete') expect(ev.response.text!.format).to.deep.equal({ type: 'json_object' });
    }
    expect(events.at(-1)).to.be.oneOf(['response.completed', 'response.incomplete']);
    // An object the length cap cut is not JSON yet; one the grammar ended must be.
    if (events.at(-1) === 'response.completed') expect(JSON.parse(done)).to.be.an('object');
    else expect(done.startsWith('{')).to.equal(true);
  });

  it('logprobs: include message.output_text.logprobs with top_logprobs, per delta and on the finished part; the same as chat completions', async () => {
    type Lp = { token: string; logprob: number; bytes: number[]; top_logprobs: { token: string; logprob: number }[] };
    const ask = { model: MODEL, input: 'Tell me a story.', max_output_tokens: 6, temperature: 0, include: ['message.output_text.logprobs' as const], top_logprobs: 3 };
    const whole = await client.responses.create(ask);
    const part = (whole.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText & { logprobs: Lp[] };
    expect(part.logprobs).to.have.length(whole.usage!.output_tokens);
    expect(part.logprobs.map((l) => l.token).join('')).to.equal(part.text);
    for (const l of part.logprobs) {
      expect(l.logprob).to.be.at.most(0);
      expect(l.top_logprobs).to.have.length(3);
      // Greedy: the chosen token is the most likely one.
      expect(l.top_logprobs[0]!.logprob).to.be.closeTo(l.logprob, 1e-6);
    }
    // Chat completions computes the same numbers for the same prompt.
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
    expect(chat.choices[0]!.logprobs!.content!.map((l) => l.logprob)).to.deep.equal(part.logprobs.map((l) => l.logprob));
    // Streamed: each delta carries its tokens; the done event all of them.
    const deltas: Lp[] = [];
    let done: Lp[] = [];
    for await (const ev of await client.responses.create({ ...ask, stream: true })) {
      if (ev.type === 'response.output_text.delta') deltas.push(...(ev.logprobs as unknown as Lp[]));
      if (ev.type === 'response.output_text.done') done = ev.logprobs as unknown as Lp[];
    }
    expect(deltas.map((l) => l.logprob)).to.deep.equal(part.logprobs.map((l) => l.logprob));
    expect(done).to.deep.equal(deltas);
    // Without the include (and no top_logprobs), none.
    const plain = await client.responses.create({ model: MODEL, input: 'Tell me a story.', max_output_tokens: 3 });
    expect(((plain.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as { logprobs: unknown[] }).logprobs).to.deep.equal([]);
  });
});
