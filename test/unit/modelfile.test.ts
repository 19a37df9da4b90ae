/**
 * Modelfile text both ways (runtime/models/modelfile.ts): what `inferctl create -f` sends and what
 * `/api/show` prints as `modelfile` and `parameters`.
 */
import { expect } from 'chai';
import { ModelfileError, parseModelfile, renderModelfile, renderParameters } from '../../src/runtime/models/modelfile.js';
import type { ModelPreset } from '../../src/runtime/models/preset-store.js';

describe('Modelfile', () => {
  it('parses every instruction: triple-quoted, quoted and bare arguments, comments, repeated stop and MESSAGE', () => {
    const text = [
      '# a comment',
      'from demo:latest',
      'SYSTEM """You are Mario.',
      'Say "wahoo" a lot."""',
      'PARAMETER temperature 0.7',
      'PARAMETER num_ctx 1024',
      'PARAMETER stop "<|im_end|>"',
      'PARAMETER stop User:',
      '',
      'MESSAGE user Who are you?',
      'MESSAGE assistant """It is me."""',
      'LICENSE MIT',
      'TEMPLATE "{{ .Prompt }}"',
      'ADAPTER ./lora.gguf',
    ].join('\r\n');
    expect(parseModelfile(text)).to.deep.equal({
      from: 'demo:latest',
      system: 'You are Mario.\r\nSay "wahoo" a lot.',
      parameters: { temperature: 0.7, num_ctx: 1024, stop: ['<|im_end|>', 'User:'] },
      messages: [
        { role: 'user', content: 'Who are you?' },
        { role: 'assistant', content: 'It is me.' },
      ],
      license: ['MIT'],
      template: '{{ .Prompt }}',
      adapters: { './lora.gguf': '' },
    });
  });

  it('says which line is wrong', () => {
    const bad = (text: string, message: RegExp) => expect(() => parseModelfile(text)).to.throw(ModelfileError, message);
    bad('SYSTEM hi\n', /needs a FROM line/);
    bad('FROM demo\nPARAMTER temperature 1\n', /line 2: unknown instruction "PARAMTER"/);
    bad('FROM demo\nPARAMETER temperature warm\n', /line 2: PARAMETER temperature needs a number/);
    bad('FROM demo\nMESSAGE tool hi\n', /line 2: MESSAGE role must be system, user or assistant/);
    bad('FROM demo\n\nSYSTEM """never closed\n', /line 3: unterminated """ string/);
    bad('FROM demo\nPARAMETER\n', /line 2: PARAMETER needs an argument/);
    bad('FROM demo\nPARAMETER temperature\n', /line 2: PARAMETER needs a name and a value/);
  });

  it('renders a preset back to a Modelfile that parses to the same fields', () => {
    const preset: ModelPreset = {
      name: 'mario',
      from: 'demo',
      system: 'Line one\nwith """ quotes',
      messages: [{ role: 'user', content: 'hi' }],
      parameters: { temperature: 0, stop: ['a', 'b"c'] },
      license: ['MIT', 'Apache-2.0'],
      created_at: '2026-12-07T00:00:00.000Z',
    };
    const back = parseModelfile(renderModelfile(preset));
    expect(back).to.deep.equal({ from: 'demo', system: preset.system, parameters: preset.parameters, messages: preset.messages, license: preset.license });
    expect(renderParameters(preset.parameters)).to.equal(`${'temperature'.padEnd(30)} 0\n${'stop'.padEnd(30)} "a"\n${'stop'.padEnd(30)} "b\\"c"`);
  });
});
