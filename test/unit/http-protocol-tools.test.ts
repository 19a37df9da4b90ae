/**
 * Tool calling mapped onto each protocol, both ways, on the real HTTP edge with a scripted gateway:
 * a request's tools and tool turns become the generation input's `tools` and chat messages
 * (calls, tool results paired with their calls), and a model answer in a native call format
 * (Hermes `<tool_call>` here, read by auto detection: no tool_choice, no grammar) comes back in
 * the protocol's own shape, streamed and not. Ollama is driven by its npm client.
 */
import Anthropic from '@anthropic-ai/sdk';
import { expect } from 'chai';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { emitText, sseEvents, startServer, type TestServer } from './http-fixtures.js';

const add = { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'b'] };
/** A Hermes call in pieces, as a model writes it token by token. */
const CALL = ['\n<tool', '_call>\n{"name": "add", ', '"arguments": {"a": 2, "b": 3}}\n</tool_call>'];
const SPEC = { name: 'add', description: 'Add', parameters: add };

describe('http: tool calls in the Ollama, Anthropic and Responses shapes', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    t.gateway.script = emitText(CALL);
  });
  after(() => t.server.close());

  const post = (path: string, body: unknown) => fetch(`${t.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('Ollama: tools, tool_calls and tool messages in; message.tool_calls with object arguments out', async () => {
    const ollama = new Ollama({ host: t.base });
    const tools = [{ type: 'function', function: { name: 'add', description: 'Add', parameters: add } }];
    const messages = [
      { role: 'user', content: 'Add 2 and 3, and 4 and 5.' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'add', arguments: { a: 2, b: 3 } } }, { function: { name: 'add', arguments: { a: 4, b: 5 } } }] },
      { role: 'tool', content: '5', tool_name: 'add' },
      { role: 'tool', content: '9' },
      { role: 'user', content: 'Now 1 and 1.' },
    ];
    t.gateway.inputs = [];
    const r = await ollama.chat({ model: 'tiny', messages, tools, stream: false });
    expect(t.gateway.inputs[0]!.prompt).to.deep.equal({
      kind: 'chat',
      messages: [
        { role: 'user', content: 'Add 2 and 3, and 4 and 5.' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'call_1_0', name: 'add', arguments: '{"a":2,"b":3}' }, { id: 'call_1_1', name: 'add', arguments: '{"a":4,"b":5}' }] },
        { role: 'tool', content: '5', name: 'add', toolCallId: 'call_1_0' },
        { role: 'tool', content: '9', toolCallId: 'call_1_1' },
        { role: 'user', content: 'Now 1 and 1.' },
      ],
      tools: [SPEC],
    });
    expect(r.message).to.deep.equal({ role: 'assistant', content: '', tool_calls: [{ function: { name: 'add', arguments: { a: 2, b: 3 } } }] });
    expect(r.done_reason).to.equal('stop');
    const parts = [];
    for await (const p of await ollama.chat({ model: 'tiny', messages, tools, stream: true })) parts.push(p);
    expect(parts.map((p) => p.message)).to.deep.equal([r.message, { role: 'assistant', content: '' }]);
    expect(parts.map((p) => p.done)).to.deep.equal([false, true]);
    // Without tools the same answer is text.
    const plain = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], stream: false });
    expect(plain.message).to.deep.equal({ role: 'assistant', content: CALL.join('') });
    const bad = await post('/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'x', tool_name: 'add' }] });
    expect(bad.status).to.equal(400);
    expect(await bad.json()).to.deep.equal({ error: "'messages[0].tool_name' is not supported: only 'tool' messages name a tool." });
  });

  it('Anthropic: tool_use and tool_result blocks in; tool_use blocks out (auto), streamed and not', async () => {
    t.gateway.inputs = [];
    const client = new Anthropic({ baseURL: t.base, apiKey: 'x', maxRetries: 0 });
    const ask = {
      model: 'tiny',
      max_tokens: 50,
      tools: [{ name: 'add', description: 'Add', input_schema: add as Anthropic.Tool.InputSchema }],
      messages: [
        { role: 'user' as const, content: 'Add 2 and 3.' },
        { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'Sure.' }, { type: 'tool_use' as const, id: 'toolu_1', name: 'add', input: { a: 2, b: 3 } }] },
        { role: 'user' as const, content: [{ type: 'tool_result' as const, tool_use_id: 'toolu_1', content: [{ type: 'text' as const, text: 'no' }], is_error: true }, { type: 'text' as const, text: 'Again.' }] },
      ],
    };
    const m = await client.messages.create(ask);
    expect(t.gateway.inputs[0]!.prompt).to.deep.equal({
      kind: 'chat',
      messages: [
        { role: 'user', content: 'Add 2 and 3.' },
        { role: 'assistant', content: 'Sure.', toolCalls: [{ id: 'toolu_1', name: 'add', arguments: '{"a":2,"b":3}' }] },
        { role: 'tool', content: 'Error: no', toolCallId: 'toolu_1' },
        { role: 'user', content: 'Again.' },
      ],
      tools: [SPEC],
    });
    expect(t.gateway.inputs[0]!.params.grammar).to.equal(null);
    expect(m.stop_reason).to.equal('tool_use');
    expect(m.content).to.have.length(1);
    expect(m.content[0]).to.deep.include({ type: 'tool_use', name: 'add', input: { a: 2, b: 3 } });
    const final = await client.messages.stream(ask).finalMessage();
    expect(final.content.map((b) => b.type)).to.deep.equal(['tool_use']);
    expect(final.content[0]).to.deep.include({ name: 'add', input: { a: 2, b: 3 } });
    expect(final.stop_reason).to.equal('tool_use');
    const names = [...(await (await post('/v1/messages', { ...ask, stream: true })).text()).matchAll(/^event: (.+)$/gm)].map((x) => x[1]);
    expect(names).to.deep.equal([
      'message_start',
      ...['content_block_start', 'ping', 'content_block_delta', 'content_block_stop'],
      'message_delta',
      'message_stop',
    ]);
  });

  it('Responses: function_call and function_call_output items in; function_call items out (auto)', async () => {
    t.gateway.inputs = [];
    const client = new OpenAI({ baseURL: `${t.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const ask = {
      model: 'tiny',
      tools: [{ type: 'function' as const, name: 'add', description: 'Add', parameters: add, strict: false }],
      input: [
        { role: 'user' as const, content: 'Add 2 and 3.' },
        { role: 'assistant' as const, content: 'Sure.' },
        { type: 'function_call' as const, call_id: 'call_a', name: 'add', arguments: '{"a":2,"b":3}' },
        { type: 'function_call_output' as const, call_id: 'call_a', output: '5' },
      ],
    };
    const r = await client.responses.create(ask);
    expect(t.gateway.inputs[0]!.prompt).to.deep.equal({
      kind: 'chat',
      messages: [
        { role: 'user', content: 'Add 2 and 3.' },
        { role: 'assistant', content: 'Sure.', toolCalls: [{ id: 'call_a', name: 'add', arguments: '{"a":2,"b":3}' }] },
        { role: 'tool', content: '5', toolCallId: 'call_a' },
      ],
      tools: [SPEC],
    });
    expect(r.output.map((o) => o.type)).to.deep.equal(['function_call']);
    expect(r.output_text).to.equal('');
    expect(r.output[0]).to.include({ name: 'add', arguments: '{"a": 2, "b": 3}', status: 'completed' });
    const events = sseEvents(await (await post('/v1/responses', { ...ask, stream: true })).text()) as { type: string; output_index?: number }[];
    expect(events.map((e) => e.type)).to.deep.equal([
      'response.created',
      'response.in_progress',
      ...['response.output_item.added', 'response.function_call_arguments.delta', 'response.function_call_arguments.done', 'response.output_item.done'],
      'response.completed',
    ]);
    expect(events.filter((e) => e.type === 'response.output_item.added').map((e) => e.output_index)).to.deep.equal([0]);
  });
});
