/** Reading tool calls out of model output, in each format models are trained to emit. */
import { expect } from 'chai';
import { mayBeToolCall, parseToolCalls } from '../../src/generation/tools/parse-tool-calls.js';

const known = new Set(['get_weather', 'add']);

describe('tool call parsing', () => {
  it('hermes / InferFlux: one or more <tool_call> blocks, arguments as JSON text, text before kept', () => {
    const r = parseToolCalls('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>{"name":"add","arguments":{"a":1,"b":2}}</tool_call>', known);
    expect(r).to.deep.equal({
      format: 'hermes',
      calls: [
        { name: 'get_weather', arguments: '{"city":"Oslo"}' },
        { name: 'add', arguments: '{"a":1,"b":2}' },
      ],
      content: 'Let me check.',
    });
  });

  it('mistral: [TOOL_CALLS] and a JSON array', () => {
    const r = parseToolCalls('[TOOL_CALLS] [{"name": "add", "arguments": {"a": 2, "b": 3}}]', known);
    expect(r).to.deep.equal({ format: 'mistral', calls: [{ name: 'add', arguments: '{"a":2,"b":3}' }], content: '' });
  });

  it('llama 3.x: the whole answer is {"name", "parameters"}, optionally after <|python_tag|>', () => {
    expect(parseToolCalls('{"name": "get_weather", "parameters": {"city": "Rome"}}', known)).to.deep.equal({
      format: 'llama3',
      calls: [{ name: 'get_weather', arguments: '{"city":"Rome"}' }],
      content: '',
    });
    expect(parseToolCalls('<|python_tag|>{"name": "add", "parameters": {"a": 1, "b": 1}}', known)?.format).to.equal('llama3');
  });

  it('refuses unknown functions, broken JSON, unclosed blocks, trailing text and plain answers', () => {
    for (const text of [
      '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
      '<tool_call>{"name": "add", "arguments": {</tool_call>',
      '<tool_call>{"name": "add", "arguments": {}}',
      '<tool_call>{"name": "add", "arguments": {}}</tool_call> and more',
      '{"answer": 42}',
      'The weather is fine.',
      '[TOOL_CALLS] {"name": "add"}',
    ]) {
      expect(parseToolCalls(text, known), text).to.equal(null);
    }
  });

  it('holds back text only while it may still become a call', () => {
    for (const t of ['', '  ', '<tool', '<tool_call>{"na', '[TOOL', '{"name"', '<|python']) expect(mayBeToolCall(t), t).to.equal(true);
    for (const t of ['Hello', ' The', '<b>', '[1, 2]']) expect(mayBeToolCall(t), t).to.equal(false);
  });
});
