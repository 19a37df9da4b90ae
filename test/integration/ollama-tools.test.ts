/**
 * Ollama tool calling on the real engine through the `ollama` npm client, unchanged. Ollama has
 * no tool_choice, so tools mean auto detection, and the random tiny model never writes a call by
 * itself. What forces one honestly is Ollama's own `format`: a JSON schema for `{"name": "add",
 * "arguments": {...}}` constrains the real model's output to the call shape Llama 3 models are
 * trained to emit, which the auto detection reads as a call and returns in Ollama's shape
 * (arguments as an object). Without tools the same output stays text. The round trip of
 * `tool_calls` and `role: "tool"` messages into the prompt is proven against OpenAI's chat route:
 * the same conversation renders to the same number of prompt tokens.
 */
import { expect } from 'chai';
import { Ollama, type Message, type Tool } from 'ollama';
import OpenAI from 'openai';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import type { RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const add = { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a', 'b'], additionalProperties: false };
const TOOLS: Tool[] = [{ type: 'function', function: { name: 'add', description: 'Add two numbers', parameters: add as Tool['function']['parameters'] } }];
/** Ollama's `format`: the answer must be a call of `add` (the Llama 3 call shape). */
const CALL_FORMAT = { type: 'object', properties: { name: { const: 'add' }, arguments: add }, required: ['name', 'arguments'], additionalProperties: false };

describe('Ollama tool calling on the real engine (ollama npm client)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let ollama: Ollama;

  before(async () => {
    server = await protocolServer();
    ollama = new Ollama({ host: server.url, headers: { authorization: `Bearer ${KEYS.all}` } });
  });

  it('a call the model writes comes back as message.tool_calls with object arguments, streamed and not', async () => {
    const ask = { model: MODEL, messages: [{ role: 'user', content: 'Add 2 and 3.' }], tools: TOOLS, format: CALL_FORMAT, options: { num_predict: 200, seed: 3 } };
    const r = await ollama.chat({ ...ask, stream: false });
    expect(r.done_reason).to.equal('stop');
    expect(r.message.content).to.equal('');
    expect(r.message.tool_calls).to.have.length(1);
    const call = r.message.tool_calls![0]!;
    expect(call.function.name).to.equal('add');
    expect(call.function.arguments).to.be.an('object');
    expect(validateOutput(add, JSON.stringify(call.function.arguments)).valid).to.equal(true);
    const parts = [];
    for await (const p of await ollama.chat({ ...ask, stream: true })) parts.push(p);
    expect(parts.map((p) => p.done)).to.deep.equal([false, true]);
    // Same seed, same call.
    expect(parts[0]!.message).to.deep.equal(r.message);
    expect(parts[1]!.message).to.deep.equal({ role: 'assistant', content: '' });
    expect(parts[1]!.done_reason).to.equal('stop');
    // Without tools the same constrained output is just text.
    const text = await ollama.chat({ ...ask, tools: undefined, stream: false });
    expect(text.message.tool_calls).to.equal(undefined);
    const json = JSON.parse(text.message.content) as { name: string; arguments: unknown };
    expect(json.name).to.equal('add');
    expect(validateOutput(add, JSON.stringify(json.arguments)).valid).to.equal(true);
  });

  it('tool_calls and tool messages go into the prompt as OpenAI chat tool turns do', async () => {
    const history = (result: string): Message[] => [
      { role: 'user', content: 'Add 2 and 3.' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'add', arguments: { a: 2, b: 3 } } }] },
      { role: 'tool', content: result, tool_name: 'add' },
    ];
    const count = async (messages: Message[], tools: Tool[] | undefined = TOOLS) =>
      (await ollama.chat({ model: MODEL, messages, tools, stream: false, options: { num_predict: 1 } })).prompt_eval_count;
    const short = await count(history('5'));
    expect((await count(history('5 '.repeat(40)))) - short).to.be.at.least(30);
    expect(await count(history('5'), [])).to.be.lessThan(short);
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.all, maxRetries: 0 });
    const chat = await openai.chat.completions.create({
      model: MODEL,
      max_tokens: 1,
      tools: TOOLS.map((t) => ({ type: 'function' as const, function: { name: t.function.name!, description: t.function.description!, parameters: add } })),
      messages: [
        { role: 'user', content: 'Add 2 and 3.' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'add', arguments: '{"a":2,"b":3}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '5' },
      ],
    });
    expect(short).to.equal(chat.usage!.prompt_tokens);
  });
});
