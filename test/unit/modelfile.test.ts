/**
 * Modelfile text both ways (runtime/models/modelfile.ts): what `inferctl create -f` sends and what
 * `/api/show` prints as `modelfile` and `parameters`; and the preset files it makes (preset-store.ts).
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferFluxError } from '../../src/errors.js';
import { ModelfileError, parseModelfile, renderModelfile, renderParameters } from '../../src/runtime/models/modelfile.js';
import { PresetStore, type ModelPreset } from '../../src/runtime/models/preset-store.js';

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

describe('PresetStore', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ifx-presets-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const preset = (name: string): ModelPreset => ({ name, from: 'demo', system: null, messages: [], parameters: { temperature: 0.5 }, license: [], created_at: '2026-12-07T00:00:00.000Z' });

  it('keeps presets by normalised name, one file each, replaced atomically, and skips foreign files', async () => {
    const store = new PresetStore(dir);
    expect(await store.list()).to.deep.equal([]);
    await store.put(preset('mario:latest'));
    await store.put({ ...preset('team/mario:v2'), system: 'hi' });
    await store.put({ ...preset('mario'), parameters: { temperature: 1 } });
    expect(readdirSync(join(dir, 'presets')).sort()).to.deep.equal(['mario.json', 'team%2Fmario%3Av2.json']);
    expect((await store.get('mario:latest'))!.parameters).to.deep.equal({ temperature: 1 });
    expect((await store.get('team/mario:v2'))!.system).to.equal('hi');
    writeFileSync(join(dir, 'presets', 'half.json'), '{"name": "half"');
    writeFileSync(join(dir, 'presets', 'other.json'), '{"name": "other"}');
    expect((await store.list()).map((p) => p.name)).to.deep.equal(['mario', 'team/mario:v2']);
    expect(await store.remove('mario')).to.equal(true);
    expect(await store.remove('mario')).to.equal(false);
    expect(await store.get('mario')).to.equal(undefined);
  });

  it('never reads or writes outside its directory', async () => {
    const store = new PresetStore(dir);
    for (const name of ['../escape', '/etc/passwd', 'a/../../b', '..', 'x\\y']) {
      expect(await store.get(name), name).to.equal(undefined);
      let refused = false;
      try {
        await store.put(preset(name));
      } catch (err) {
        refused = err instanceof InferFluxError && err.code === 'invalid_request';
      }
      expect(refused, name).to.equal(true);
    }
    expect(existsSync(join(dir, 'presets'))).to.equal(false);
  });
});
