/**
 * Tool calling on the real engine through the `openai` ctx.client. The random tiny model never calls
 * a tool by itself, so `tool_choice: "required"` and named choices (grammar-constrained) are what
 * make calls here: each must name a declared function with arguments valid for its schema, in
 * OpenAI's shapes, streamed (delta.tool_calls with index, id, name, argument pieces) and not. A
 * two-turn loop sends the call and its result back; bad tool input is a 400 naming the parameter.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { metric, serverWithOpenAI } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const weather = {
  type: 'object',
  properties: { city: { type: 'string', minLength: 1, maxLength: 12 }, unit: { enum: ['c', 'f'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const add = { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a', 'b'], additionalProperties: false };
const TOOLS: OpenAI.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: weather } },
  { type: 'function', function: { name: 'add', description: 'Add two numbers', parameters: add } },
];
const SCHEMAS: Record<string, unknown> = { get_weather: weather, add };

describe('tool calling (real engine, openai client)', function () {
  this.timeout(180_000);
  // Tool calls are logged (server.log_tool_calls), so the log can be checked against the responses.
  const ctx = serverWithOpenAI({ INFERFLUX_LOG_TOOL_CALLS: 'true' });

  function checkCall(c: { id: string; type: string; function: { name: string; arguments: string } }): void {
    expect(c.id).to.match(/^call_[0-9a-f]{24}$/);
    expect(c.type).to.equal('function');
    expect(Object.keys(SCHEMAS)).to.include(c.function.name);
    const v = validateOutput(SCHEMAS[c.function.name], c.function.arguments);
    expect(v.valid, `${c.function.name}(${c.function.arguments})`).to.equal(true);
  }

  it('required: finish_reason tool_calls, calls valid for their schemas, over several seeds', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const r = await ctx.client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'What is the weather in Oslo?' }],
        tools: TOOLS,
        tool_choice: 'required',
        temperature: 1,
        seed,
        max_tokens: 300,
      });
      const c = r.choices[0]!;
      expect(c.finish_reason).to.equal('tool_calls');
      expect(c.message.content).to.equal(null);
      expect(c.message.tool_calls!.length).to.be.within(1, 4);
      for (const call of c.message.tool_calls!) checkCall(call as never);
    }
    expect(await metric(ctx.server.url, 'inferflux_tool_calls_parsed_total{format="hermes"}')).to.be.at.least(6);
  });

  it('a named function is the one called; parallel_tool_calls false gives exactly one call', async () => {
    const r = await ctx.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Add 2 and 3.' }],
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'add' } },
      parallel_tool_calls: false,
      temperature: 0.7,
      seed: 9,
      max_tokens: 200,
    });
    const calls = r.choices[0]!.message.tool_calls!;
    expect(calls).to.have.length(1);
    const call = calls[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).to.equal('add');
    checkCall(calls[0] as never);
    // INFERFLUX_LOG_TOOL_CALLS: one line for the call, with its id and size but not its arguments.
    const lines = ctx.server
      .logs()
      .split('\n')
      .filter((l) => l.includes(call.id))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.deep.include({ component: 'tools', call_id: call.id, function: 'add', format: 'hermes', choice: 0, index: 0, argument_chars: call.function.arguments.length });
    // The request's id, as the x-request-id header carried it.
    expect(lines[0]!.req_id).to.equal((r as unknown as { _request_id: string })._request_id);
    expect(JSON.stringify(lines[0])).to.not.include(call.function.arguments);
  });

  it('streamed: delta.tool_calls with index, id and name first, then the arguments in pieces', async () => {
    const stream = await ctx.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      temperature: 0.5,
      seed: 4,
      max_tokens: 200,
      stream: true,
    });
    const calls: { id: string; type: string; function: { name: string; arguments: string } }[] = [];
    let pieces = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      const ch = chunk.choices[0];
      if (!ch) continue;
      finish = ch.finish_reason ?? finish;
      for (const d of ch.delta.tool_calls ?? []) {
        if (d.id) calls[d.index] = { id: d.id, type: d.type!, function: { name: d.function!.name!, arguments: '' } };
        else {
          calls[d.index]!.function.arguments += d.function!.arguments!;
          pieces++;
        }
      }
    }
    expect(finish).to.equal('tool_calls');
    expect(calls).to.have.length(1);
    expect(calls[0]!.function.name).to.equal('get_weather');
    expect(pieces).to.be.greaterThan(0);
    checkCall(calls[0]!);
  });

  it('streamed calls, reassembled by the openai client, equal the non-streamed ones for the same seed', async () => {
    const strip = (calls: OpenAI.ChatCompletionMessageToolCall[] | undefined) =>
      (calls ?? []).map((c) => ({ type: c.type, function: (c as OpenAI.ChatCompletionMessageFunctionToolCall).function }));
    for (const seed of [1, 2, 3]) {
      const req = { model: MODEL, messages: [{ role: 'user' as const, content: 'Use a tool.' }], tools: TOOLS, tool_choice: 'required' as const, temperature: 0.7, seed, max_tokens: 300 };
      const whole = await ctx.client.chat.completions.create(req);
      const stream = ctx.client.chat.completions.stream(req);
      let pieces = 0;
      stream.on('chunk', (chunk) => {
        for (const d of chunk.choices[0]?.delta.tool_calls ?? []) if (!d.id && d.function?.arguments) pieces++;
      });
      const final = await stream.finalChatCompletion();
      expect(final.choices[0]!.finish_reason).to.equal('tool_calls');
      expect(strip(final.choices[0]!.message.tool_calls), `seed ${seed}`).to.deep.equal(strip(whole.choices[0]!.message.tool_calls));
      for (const c of whole.choices[0]!.message.tool_calls!) checkCall(c as never);
      // Arguments stream as tokens arrive: a piece per few characters, not one blob at the end.
      const chars = strip(whole.choices[0]!.message.tool_calls).reduce((n, c) => n + c.function.arguments.length, 0);
      expect(pieces, `seed ${seed}`).to.be.at.least(Math.min(3, chars));
    }
  });

  it('a two-turn tool loop: the call and its result go back into the next prompt', async () => {
    const first = await ctx.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Add 2 and 3.' }],
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'add' } },
      seed: 1,
      max_tokens: 200,
    });
    const msg = first.choices[0]!.message;
    const call = msg.tool_calls![0]!;
    const history = (result: string): OpenAI.ChatCompletionMessageParam[] => [
      { role: 'user', content: 'Add 2 and 3.' },
      msg as OpenAI.ChatCompletionMessageParam,
      { role: 'tool', tool_call_id: call.id, content: result },
    ];
    const short = await ctx.client.chat.completions.create({ model: MODEL, messages: history('5'), tools: TOOLS, max_tokens: 8, temperature: 0 });
    const long = await ctx.client.chat.completions.create({ model: MODEL, messages: history('5 '.repeat(40)), tools: TOOLS, max_tokens: 8, temperature: 0 });
    expect(short.choices[0]!.finish_reason).to.be.oneOf(['stop', 'length', 'tool_calls']);
    // The tool's result is in the prompt: a longer result costs more prompt tokens.
    expect(long.usage!.prompt_tokens - short.usage!.prompt_tokens).to.be.at.least(30);
    const withoutTools = await ctx.client.chat.completions.create({ model: MODEL, messages: history('5'), max_tokens: 8, temperature: 0 });
    // The tools (preamble) are in the prompt too.
    expect(short.usage!.prompt_tokens).to.be.greaterThan(withoutTools.usage!.prompt_tokens);
  });

  it('bad tool input is a 400 naming the parameter, before any token', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ tools: [{ type: 'function', function: { name: 'x', parameters: { type: 'object', properties: { a: { type: 'string', not: {} } } } } }] }, 'tools[0].function.parameters'],
      [{ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ tools: [TOOLS[0], TOOLS[0]] }, 'tools[1].function.name'],
      [{ tools: TOOLS, tool_choice: 'required', response_format: { type: 'json_object' } }, 'tool_choice'],
    ];
    for (const [extra, param] of cases) {
      const err = await ctx.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 4, ...extra } as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(extra).slice(0, 100)).to.be.instanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param, JSON.stringify(extra).slice(0, 100)).to.equal(param);
    }
  });
});
