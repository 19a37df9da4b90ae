/**
 * Tool calls stream while they are generated: the sink starts a call once its name is complete
 * and hands its arguments on as they grow, whatever the pieces; over HTTP (fake engine) several
 * argument deltas reach the client while the call is still being generated, and the streamed
 * call reassembles exactly the non-streamed one.
 */
import { expect } from 'chai';
import type { TokenSink } from '../../src/generation/contract.js';
import { toolCallSink, type ToolCallReceiver } from '../../src/http/generation/tool-call-sink.js';
import { Metrics } from '../../src/metrics.js';
import { CREATED, json, startServer, type TestServer } from './http-fixtures.js';

type Event = ['text', string] | ['start', number, string] | ['args', number, string] | ['end'];

/** Feeds `pieces` to a tool-call sink for one choice; returns what it handed on. */
function run(pieces: string[], opts: { constrained?: boolean; parallel?: boolean } = {}): { events: Event[]; calls: { name: string; arguments: string }[]; text: string } {
  const events: Event[] = [];
  const inner: TokenSink & ToolCallReceiver = {
    onStart: () => undefined,
    onText: (_c, text) => void events.push(['text', text]),
    onToolCallStart: (_c, i, id, name) => {
      expect(id).to.match(/^call_[0-9a-f]{24}$/);
      events.push(['start', i, name]);
    },
    onToolCallArguments: (_c, i, piece) => void events.push(['args', i, piece]),
    onChoiceEnd: () => void events.push(['end']),
    onEnd: () => undefined,
    onError: (e) => {
      throw e;
    },
  };
  const sink = toolCallSink(inner, { names: new Set(['get_weather', 'add']), constrained: opts.constrained ?? false, parallel: opts.parallel ?? true }, 1, new Metrics({ defaultMetrics: false }));
  for (const p of pieces) sink.onText(0, p);
  sink.onChoiceEnd(0, 'stop', pieces.length);
  const calls: { name: string; arguments: string }[] = [];
  let text = '';
  for (const e of events) {
    if (e[0] === 'start') calls[e[1]] = { name: e[2], arguments: '' };
    else if (e[0] === 'args') calls[e[1]]!.arguments += e[2];
    else if (e[0] === 'text') text += e[1];
  }
  return { events, calls, text };
}

const chars = (s: string): string[] => [...s];

describe('tool calls, streamed as generated', () => {
  const hermes = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa\\"ris}", "tags": ["a", {"b": 1}]}}\n</tool_call>';
  const two = `${hermes}\n<tool_call>\n{"arguments": {"a": 1, "b": 2}, "name": "add"}\n</tool_call>`;

  it('the arguments arrive piece by piece while generated, and equal the model text whole', () => {
    for (const constrained of [true, false]) {
      const { events, calls } = run(chars(hermes), { constrained });
      expect(calls).to.deep.equal([{ name: 'get_weather', arguments: '{"city": "Pa\\"ris}", "tags": ["a", {"b": 1}]}' }]);
      // One piece per character fed once the arguments began; nothing waited for the end.
      expect(events.filter((e) => e[0] === 'args').length).to.equal(calls[0]!.arguments.length);
      expect(events[0]).to.deep.equal(['start', 0, 'get_weather']);
      expect(events.at(-1)).to.deep.equal(['end']);
    }
  });

  it('however the output is cut into pieces, the calls are the same', () => {
    const whole = run([two]).calls;
    expect(whole.map((c) => c.name)).to.deep.equal(['get_weather', 'add']);
    expect(whole[1]!.arguments).to.equal('{"a": 1, "b": 2}');
    for (const size of [1, 2, 3, 5, 8, 13]) {
      const pieces = Array.from({ length: Math.ceil(two.length / size) }, (_, i) => two.slice(i * size, i * size + size));
      expect(run(pieces).calls, `pieces of ${size}`).to.deep.equal(whole);
    }
    // No parallel calls: the first only.
    expect(run(chars(two), { parallel: false }).calls).to.deep.equal(whole.slice(0, 1));
  });

  it('string arguments are decoded, missing ones are {}, parameters count as arguments', () => {
    expect(run(chars('<tool_call>{"name":"add","arguments":"{\\"a\\":1}"}</tool_call>')).calls).to.deep.equal([{ name: 'add', arguments: '{"a":1}' }]);
    expect(run(chars('<tool_call>{"name":"add"}</tool_call>')).calls).to.deep.equal([{ name: 'add', arguments: '{}' }]);
    expect(run(chars('<tool_call>{"name":"add","parameters":{"a":2}}</tool_call>')).calls).to.deep.equal([{ name: 'add', arguments: '{"a":2}' }]);
  });

  it('auto: text that is no call streams as text; unknown names and other formats are read at the end', () => {
    expect(run(chars('Hello there'))).to.deep.include({ calls: [], text: 'Hello there' });
    const unknown = '<tool_call>{"name":"nope","arguments":{}}</tool_call>';
    expect(run(chars(unknown))).to.deep.include({ calls: [], text: unknown });
    expect(run(chars('[TOOL_CALLS][{"name":"add","arguments":{"a":1}}]')).calls).to.deep.equal([{ name: 'add', arguments: '{"a":1}' }]);
    expect(run(chars('{"name":"add","parameters":{"b":3}}')).calls).to.deep.equal([{ name: 'add', arguments: '{"b":3}' }]);
  });
});

describe('http: streamed tool calls reach the client while generated', () => {
  let t: TestServer;
  afterEach(() => t.server.close(100));

  const head = ['<tool_call>', '\n{"name": "get', '_weather", "arguments": {', '"city"', ': "Pa', 'r'];
  const tail = ['is", "unit"', ': "c"}}', '\n</tool_call>'];

  /** The fake engine writes the call's first half, then waits for `go` before the rest. */
  function scripted(go: Promise<void>): void {
    t.gateway.script = (input, sink) => {
      setImmediate(async () => {
        sink.onStart({ model: 'tiny', promptTokens: 5, created: CREATED });
        for (const p of head) sink.onText(0, p);
        await go;
        for (const p of tail) sink.onText(0, p);
        sink.onChoiceEnd(0, 'stop', head.length + tail.length);
        sink.onEnd({ promptTokens: 5, completionTokens: head.length + tail.length, cachedTokens: 0 });
      });
    };
  }

  const body = (stream: boolean) => ({
    messages: [{ role: 'user', content: 'Weather?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] } } } } }],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
    stream,
  });

  it('several argument pieces arrive before the call is complete; the whole equals the non-streamed call', async () => {
    t = await startServer();
    let go!: () => void;
    scripted(new Promise((r) => (go = r)));
    const res = await fetch(`${t.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(true)) });
    expect(res.status).to.equal(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    const deltas: any[] = [];
    const readEvents = async (until: () => boolean, ms: number): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!until()) {
        const left = deadline - Date.now();
        if (left <= 0) return;
        const r = await Promise.race([reader.read(), new Promise<null>((ok) => setTimeout(() => ok(null), left))]);
        if (r === null || r.done) return;
        buffered += decoder.decode(r.value, { stream: true });
        const blocks = buffered.split('\n\n');
        buffered = blocks.pop()!;
        for (const b of blocks) {
          const data = b.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
          if (data && data !== '[DONE]') deltas.push(...JSON.parse(data).choices.flatMap((c: any) => c.delta?.tool_calls ?? []));
        }
      }
    };
    const argPieces = () => deltas.filter((d) => !d.id && d.function?.arguments).length;
    // The engine is parked half-way through the call: only streaming as generated shows anything.
    await readEvents(() => argPieces() >= 3, 2000);
    expect(deltas[0]).to.deep.include({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(argPieces(), 'argument pieces before the call was complete').to.be.at.least(3);
    go();
    await readEvents(() => false, 2000);
    const streamed = deltas.filter((d) => !d.id).map((d) => d.function.arguments).join('');

    scripted(Promise.resolve());
    const whole = await json(await fetch(`${t.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(false)) }));
    expect(whole.choices[0].finish_reason).to.equal('tool_calls');
    expect(whole.choices[0].message.tool_calls[0].function).to.deep.equal({ name: 'get_weather', arguments: streamed });
    expect(streamed).to.equal('{"city": "Paris", "unit": "c"}');
  });
});
