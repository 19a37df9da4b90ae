/**
 * Anthropic tool use on the real engine through `@anthropic-ai/sdk`. The random tiny model never
 * calls a tool by itself, so `tool_choice` `any` and `tool` (grammar-constrained, as OpenAI's
 * required/named) make the calls: `tool_use` blocks with `toolu_` ids and inputs valid for their
 * schemas, `stop_reason: "tool_use"`, streamed as `input_json_delta` pieces. The loop sends the
 * `tool_use` and a `tool_result` back; the prompt is the one OpenAI's chat route renders for the
 * same conversation (same token count), and bad tool input is a 400 in Anthropic's error shape.
 */
import Anthropic from '@anthropic-ai/sdk';
import { expect } from 'chai';
import OpenAI from 'openai';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import type { RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const weather = {
  type: 'object',
  properties: { city: { type: 'string', minLength: 1, maxLength: 12 }, unit: { enum: ['c', 'f'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const add = { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a', 'b'], additionalProperties: false };
const TOOLS: Anthropic.Tool[] = [
  { name: 'get_weather', description: 'Weather in a city', input_schema: weather as Anthropic.Tool.InputSchema },
  { name: 'add', description: 'Add two numbers', input_schema: add as Anthropic.Tool.InputSchema },
];
const SCHEMAS: Record<string, unknown> = { get_weather: weather, add };
const ASK = { model: MODEL, max_tokens: 200, tools: TOOLS, messages: [{ role: 'user' as const, content: 'Add 2 and 3.' }] };

function checkToolUse(b: Anthropic.ContentBlock): Anthropic.ToolUseBlock {
  expect(b.type).to.equal('tool_use');
  const t = b as Anthropic.ToolUseBlock;
  expect(t.id).to.match(/^toolu_[0-9a-f]{24}$/);
  expect(Object.keys(SCHEMAS)).to.include(t.name);
  expect(t.input).to.be.an('object');
  expect(validateOutput(SCHEMAS[t.name], JSON.stringify(t.input)).valid, `${t.name}(${JSON.stringify(t.input)})`).to.equal(true);
  return t;
}

async function rejection(p: Promise<unknown>): Promise<InstanceType<typeof Anthropic.APIError>> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).to.be.instanceOf(Anthropic.BadRequestError);
  return err as InstanceType<typeof Anthropic.APIError>;
}

describe('Anthropic tool use on the real engine (@anthropic-ai/sdk)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: Anthropic;

  before(async () => {
    server = await protocolServer();
    client = new Anthropic({ baseURL: server.url, apiKey: KEYS.all, maxRetries: 0 });
  });

  it('tool_choice any: tool_use blocks valid for their schemas, stop_reason tool_use', async () => {
    for (let i = 0; i < 3; i++) {
      // Up to four parallel calls of random (schema-valid) arguments need room.
      const m = await client.messages.create({ ...ASK, max_tokens: 500, tool_choice: { type: 'any' } });
      expect(m.stop_reason).to.equal('tool_use');
      expect(m.content.length).to.be.within(1, 4);
      m.content.forEach(checkToolUse);
    }
  });

  it('tool_choice tool: the named tool, one call with disable_parallel_tool_use', async () => {
    const m = await client.messages.create({ ...ASK, tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true } });
    expect(m.content).to.have.length(1);
    expect(checkToolUse(m.content[0]!).name).to.equal('get_weather');
    expect(m.stop_reason).to.equal('tool_use');
  });

  it('streamed: content_block_start with a tool_use block, input_json_delta pieces, stop_reason tool_use', async () => {
    const events: Anthropic.RawMessageStreamEvent[] = [];
    for await (const ev of await client.messages.create({ ...ASK, tool_choice: { type: 'tool', name: 'add', disable_parallel_tool_use: true }, stream: true })) events.push(ev);
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'content_block_delta').length;
    expect(deltas).to.be.greaterThan(0);
    expect(types).to.deep.equal(['message_start', 'content_block_start', ...Array(deltas).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
    const start = events[1] as Anthropic.RawContentBlockStartEvent;
    expect(start.index).to.equal(0);
    expect(start.content_block).to.deep.include({ type: 'tool_use', name: 'add', input: {} });
    let json = '';
    for (const e of events) {
      if (e.type !== 'content_block_delta') continue;
      expect(e.delta.type).to.equal('input_json_delta');
      json += (e.delta as Anthropic.InputJSONDelta).partial_json;
    }
    checkToolUse({ ...(start.content_block as Anthropic.ToolUseBlock), input: JSON.parse(json) as unknown });
    expect((events.at(-2) as Anthropic.RawMessageDeltaEvent).delta.stop_reason).to.equal('tool_use');
    // The SDK's own accumulator parses the input back into an object.
    const final = await client.messages.stream({ ...ASK, max_tokens: 500, tool_choice: { type: 'any' } }).finalMessage();
    expect(final.stop_reason).to.equal('tool_use');
    final.content.forEach(checkToolUse);
  });

  it('a two-turn loop: tool_use and tool_result go into the prompt as OpenAI tool turns do', async () => {
    const first = await client.messages.create({ ...ASK, tool_choice: { type: 'tool', name: 'add', disable_parallel_tool_use: true } });
    const use = checkToolUse(first.content[0]!);
    const history = (result: Anthropic.ToolResultBlockParam['content'], isError = false): Anthropic.MessageParam[] => [
      ASK.messages[0]!,
      { role: 'assistant', content: first.content as Anthropic.ContentBlockParam[] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: result, ...(isError ? { is_error: true } : {}) }] },
    ];
    const answer = await client.messages.create({ ...ASK, messages: history('5'), max_tokens: 8 });
    expect(answer.stop_reason).to.be.oneOf(['end_turn', 'max_tokens', 'tool_use']);
    const count = async (messages: Anthropic.MessageParam[]) => (await client.messages.countTokens({ model: MODEL, tools: TOOLS, messages })).input_tokens;
    const short = await count(history('5'));
    expect(short).to.equal(answer.usage.input_tokens + (answer.usage.cache_read_input_tokens ?? 0));
    // The result, as a string or as text blocks, is in the prompt; an error result is marked.
    expect(await count(history([{ type: 'text', text: '5' }]))).to.equal(short);
    expect((await count(history('5 '.repeat(40)))) - short).to.be.at.least(30);
    expect(await count(history('5', true))).to.be.greaterThan(short);
    // The same conversation through OpenAI's chat route renders to the same prompt length.
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.all, maxRetries: 0 });
    const chat = await openai.chat.completions.create({
      model: MODEL,
      max_tokens: 1,
      tools: TOOLS.map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description!, parameters: t.input_schema as Record<string, unknown> } })),
      messages: [
        { role: 'user', content: 'Add 2 and 3.' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: use.name, arguments: JSON.stringify(use.input) } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '5' },
      ],
    });
    expect(chat.usage!.prompt_tokens).to.equal(short);
    // Without the tools the prompt is shorter: they are rendered too.
    expect(await count(history('5').slice(0, 1))).to.be.lessThan(short);
    expect((await client.messages.countTokens({ model: MODEL, messages: history('5') })).input_tokens).to.be.lessThan(short);
  });

  it('bad tool input is a 400 in Anthropic error shape naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ tool_choice: { type: 'tool', name: 'nope' } }, "'tool_choice' names 'nope', which is not among the tools."],
      [{ tools: [{ name: 'x', input_schema: { type: 'object', properties: { a: { type: 'string', not: {} } } } }] }, 'tools[0].input_schema'],
      [{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, "'tools[0].type' is not supported: 'web_search_20250305' is a server tool"],
      [{ tools: [{ name: 'x' }] }, "Missing required parameter: 'tools[0].input_schema'."],
      [{ tools: undefined, tool_choice: { type: 'any' } }, "'tool_choice' needs 'tools'"],
      [{ messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'toolu_1', name: 'add', input: {} }] }] }, "'tool_use' blocks belong to assistant turns."],
    ];
    for (const [extra, text] of cases) {
      const e = await rejection(client.messages.create({ ...ASK, max_tokens: 4, ...extra } as never));
      expect(e.type, text).to.equal('invalid_request_error');
      expect((e.error as { type: string }).type).to.equal('error');
      expect(e.apiMessage, JSON.stringify(extra)).to.include(text);
    }
  });
});
