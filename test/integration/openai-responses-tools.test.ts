/**
 * Function calling in the Responses API on the real engine through the `openai` client's
 * `responses.create`. The random tiny model never calls by itself, so `tool_choice` `required` and
 * a named function (grammar-constrained) make the calls: `function_call` output items with
 * arguments valid for their schemas, streamed as `response.function_call_arguments.delta` pieces.
 * The loop sends the `function_call` and its `function_call_output` back; the prompt is the one
 * OpenAI's chat route renders for the same conversation (same token count). Hosted tools and bad
 * tool input are 400s naming the field.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import type { RunningServer } from '../helpers/server.js';

type FunctionCall = OpenAI.Responses.ResponseFunctionToolCall;

const MODEL = 'tiny-seed0';
const weather = {
  type: 'object',
  properties: { city: { type: 'string', minLength: 1, maxLength: 12 }, unit: { enum: ['c', 'f'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const add = { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a', 'b'], additionalProperties: false };
const TOOLS: OpenAI.Responses.FunctionTool[] = [
  { type: 'function', name: 'get_weather', description: 'Weather in a city', parameters: weather, strict: true },
  { type: 'function', name: 'add', description: 'Add two numbers', parameters: add, strict: true },
];
const SCHEMAS: Record<string, unknown> = { get_weather: weather, add };
const ASK = { model: MODEL, input: 'Add 2 and 3.', tools: TOOLS, max_output_tokens: 200 };

function checkCall(item: OpenAI.Responses.ResponseOutputItem): FunctionCall {
  expect(item.type).to.equal('function_call');
  const c = item as FunctionCall;
  expect(c.id).to.match(/^fc_[0-9a-f]{24}$/);
  expect(c.call_id).to.match(/^call_[0-9a-f]{24}$/);
  expect(c.status).to.equal('completed');
  expect(Object.keys(SCHEMAS)).to.include(c.name);
  expect(validateOutput(SCHEMAS[c.name], c.arguments).valid, `${c.name}(${c.arguments})`).to.equal(true);
  return c;
}

describe('Responses API function calling on the real engine (openai client)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    server = await protocolServer();
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.all, maxRetries: 0 });
  });

  it('required: function_call items valid for their schemas, the tool fields echoed', async () => {
    for (let i = 0; i < 3; i++) {
      // Up to four parallel calls of random (schema-valid) arguments need room.
      const r = await client.responses.create({ ...ASK, max_output_tokens: 500, tool_choice: 'required' });
      expect(r.status).to.equal('completed');
      expect(r.output.length).to.be.within(1, 4);
      r.output.forEach(checkCall);
      expect(r.output_text).to.equal('');
      expect(r).to.deep.include({ tool_choice: 'required', parallel_tool_calls: true, tools: TOOLS });
    }
  });

  it('a named function with parallel_tool_calls false: exactly that one call', async () => {
    const r = await client.responses.create({ ...ASK, tool_choice: { type: 'function', name: 'get_weather' }, parallel_tool_calls: false });
    expect(r.output).to.have.length(1);
    expect(checkCall(r.output[0]!).name).to.equal('get_weather');
    expect(r).to.deep.include({ tool_choice: { type: 'function', name: 'get_weather' }, parallel_tool_calls: false });
  });

  it('streamed: output_item.added, function_call_arguments.delta pieces, .done, output_item.done', async () => {
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const ev of await client.responses.create({ ...ASK, tool_choice: { type: 'function', name: 'add' }, parallel_tool_calls: false, stream: true })) events.push(ev);
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.function_call_arguments.delta').length;
    expect(deltas).to.be.greaterThan(0);
    expect(types).to.deep.equal([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      ...Array(deltas).fill('response.function_call_arguments.delta'),
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).to.deep.equal(events.map((_, i) => i));
    const added = (events[2] as OpenAI.Responses.ResponseOutputItemAddedEvent).item as FunctionCall;
    expect(added).to.include({ type: 'function_call', name: 'add', arguments: '', status: 'in_progress' });
    let args = '';
    for (const e of events) if (e.type === 'response.function_call_arguments.delta') args += e.delta;
    const done = events.at(-3) as OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent;
    expect(done).to.include({ item_id: added.id, output_index: 0, arguments: args });
    const item = checkCall((events.at(-2) as OpenAI.Responses.ResponseOutputItemDoneEvent).item);
    expect(item).to.include({ id: added.id, call_id: added.call_id, arguments: args });
    const completed = (events.at(-1) as OpenAI.Responses.ResponseCompletedEvent).response;
    expect(completed.output).to.deep.equal([item]);
  });

  it('a two-turn loop: function_call and function_call_output go into the prompt as chat tool turns do', async () => {
    const first = await client.responses.create({ ...ASK, tool_choice: { type: 'function', name: 'add' }, parallel_tool_calls: false });
    const call = checkCall(first.output[0]!);
    const input = (output: string): OpenAI.Responses.ResponseInput => [
      { role: 'user', content: 'Add 2 and 3.' },
      { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output },
    ];
    const short = await client.responses.create({ ...ASK, input: input('5'), max_output_tokens: 8, temperature: 0 });
    expect(short.status).to.be.oneOf(['completed', 'incomplete']);
    const long = await client.responses.create({ ...ASK, input: input('5 '.repeat(40)), max_output_tokens: 8, temperature: 0 });
    expect(long.usage!.input_tokens - short.usage!.input_tokens).to.be.at.least(30);
    const chat = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 1,
      tools: TOOLS.map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description!, parameters: t.parameters! } })),
      messages: [
        { role: 'user', content: 'Add 2 and 3.' },
        { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function', function: { name: call.name, arguments: call.arguments } }] },
        { role: 'tool', tool_call_id: call.call_id, content: '5' },
      ],
    });
    expect(short.usage!.input_tokens).to.equal(chat.usage!.prompt_tokens);
    // The tools are rendered too.
    const bare = await client.responses.create({ model: MODEL, input: input('5'), max_output_tokens: 1 });
    expect(bare.usage!.input_tokens).to.be.lessThan(short.usage!.input_tokens);
  });

  it('hosted tools and bad tool input are 400s naming the field', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ tools: [...TOOLS, { type: 'web_search' }, { type: 'file_search', vector_store_ids: ['vs_1'] }] }, 'tools[2].type', 'web_search, file_search'],
      [{ tool_choice: { type: 'function', name: 'nope' } }, 'tool_choice', "'nope', which is not among the tools"],
      [{ tool_choice: { type: 'web_search_preview' } }, 'tool_choice', 'web_search_preview'],
      [{ tools: [{ type: 'function', name: 'x', parameters: { type: 'object', properties: { a: { type: 'string', not: {} } } } }] }, 'tools[0].parameters', "'not'"],
      [{ tools: [], tool_choice: 'required' }, 'tool_choice', "needs 'tools'"],
      [{ input: [{ type: 'function_call', call_id: 'c1', name: 'add', arguments: '{oops' }] }, 'input[0].arguments', 'JSON'],
    ];
    for (const [extra, param, text] of cases) {
      const e = await client.responses.create({ ...ASK, max_output_tokens: 4, ...extra } as never).catch((err: unknown) => err);
      expect(e, JSON.stringify(extra)).to.be.instanceOf(OpenAI.BadRequestError);
      const b = e as InstanceType<typeof OpenAI.BadRequestError>;
      expect(b.param, JSON.stringify(extra)).to.equal(param);
      expect(b.message).to.include(text);
    }
  });
});
