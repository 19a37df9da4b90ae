/**
 * Created models (`POST /api/create`, model presets) on the real server, driven by the `ollama`
 * npm client: create from the served model with a system prompt, parameters, messages and a
 * license; list, show, copy, delete; a preset of a preset; and each preset field reaching the
 * generation: the same greedy answer and prompt length as the base model asked the long way, on
 * Ollama's chat and generate, OpenAI's chat, completions and Responses (the `openai` client) and
 * Anthropic's Messages (its SDK); listed by `/v1/models`. And
 * `inferctl create NAME -f Modelfile` as a child process.
 */
import { expect } from 'chai';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { runProcess } from '../helpers/process.js';
import { startServer, tinyModel, type RunningServer } from '../helpers/server.js';

const CLI = new URL('../../dist/cli/inferctl.js', import.meta.url).pathname;

const BASE = 'tiny-seed0';
const ADMIN = 'sk-create-admin-0123456789';
const USER = 'sk-create-user-0123456789';
const SYSTEM = 'You are Mario from Super Mario Bros.';
const HISTORY = [
  { role: 'user' as const, content: 'Who are you?' },
  { role: 'assistant' as const, content: 'It is me, Mario!' },
];

async function rejection(p: Promise<unknown>): Promise<{ status_code: number; error: string }> {
  try {
    await p;
  } catch (err) {
    return err as { status_code: number; error: string };
  }
  throw new Error('expected the call to fail');
}

describe('Ollama /api/create: model presets on the real engine', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let admin: Ollama;
  let user: Ollama;

  before(async () => {
    server = await startServer({ INFERFLUX_API_KEYS: `${ADMIN}:admin|read|generate,${USER}:generate|read` });
    admin = new Ollama({ host: server.url, headers: { authorization: `Bearer ${ADMIN}` } });
    user = new Ollama({ host: server.url, headers: { authorization: `Bearer ${USER}` } });
  });
  after(async () => {
    expect(await server?.stop()).to.equal(0);
  });

  it('creates a preset (streamed status lines), lists and shows it', async () => {
    const lines: string[] = [];
    for await (const line of await admin.create({
      model: 'mario',
      from: `${BASE}:latest`,
      system: SYSTEM,
      parameters: { temperature: 0, num_predict: 6, stop: ['zzzz'] },
      messages: HISTORY,
      license: 'MIT',
      stream: true,
    })) {
      lines.push(line.status);
    }
    expect(lines[0]).to.equal('reading model metadata');
    expect(lines).to.include.members(['creating system layer', 'creating parameters layer', 'creating messages layer', 'creating license layer', 'writing manifest']);
    expect(lines.at(-1)).to.equal('success');
    // Kept as one file beside the pulled models, no temp file left.
    expect(readdirSync(join(server.dir, 'pulled', 'presets'))).to.deep.equal(['mario.json']);

    const { models } = await user.list();
    const base = models.find((m) => m.name === `${BASE}:latest`)!;
    const mario = models.find((m) => m.name === 'mario:latest')!;
    expect(mario, 'mario listed').to.not.equal(undefined);
    expect(mario.digest).to.match(/^[0-9a-f]{64}$/).and.not.equal(base.digest);
    expect(mario.size).to.equal(base.size);
    expect(mario.details).to.deep.equal({ ...base.details, parent_model: `${BASE}:latest` });

    const show = await user.show({ model: 'mario' });
    expect(show.system).to.equal(SYSTEM);
    expect(show.parameters).to.match(/^temperature\s+0$/m).and.match(/^num_predict\s+6$/m).and.match(/^stop\s+"zzzz"$/m);
    expect(show.messages).to.deep.equal(HISTORY);
    expect(show.license).to.equal('MIT');
    expect(show.modelfile).to.include(`FROM ${BASE}`).and.include(`SYSTEM """${SYSTEM}"""`).and.include('PARAMETER temperature 0');
    expect(show.template).to.equal((await user.show({ model: BASE })).template);
  });

  it('Ollama chat and generate on the preset equal the base model asked with the same system, history and options', async () => {
    const question = { role: 'user' as const, content: 'Where is the princess?' };
    const viaPreset = await user.chat({ model: 'mario', messages: [question], stream: false });
    const longWay = await user.chat({
      model: BASE,
      messages: [{ role: 'system', content: SYSTEM }, ...HISTORY, question],
      options: { temperature: 0, num_predict: 6, stop: ['zzzz'] },
      stream: false,
    });
    expect(viaPreset.model).to.equal('mario');
    expect(viaPreset.prompt_eval_count).to.equal(longWay.prompt_eval_count);
    expect(viaPreset.message.content).to.equal(longWay.message.content);
    expect(viaPreset.eval_count).to.equal(longWay.eval_count);
    expect(viaPreset.eval_count).to.be.at.most(6);

    // The request's own system message replaces the preset's; its options win over the preset's.
    const own = await user.chat({ model: 'mario', messages: [{ role: 'system', content: 'Be Luigi.' }, question], options: { num_predict: 2 }, stream: false });
    const ownLong = await user.chat({
      model: BASE,
      messages: [{ role: 'system', content: 'Be Luigi.' }, ...HISTORY, question],
      options: { temperature: 0, num_predict: 2, stop: ['zzzz'] },
      stream: false,
    });
    expect(own.prompt_eval_count).to.equal(ownLong.prompt_eval_count);
    expect(own.message.content).to.equal(ownLong.message.content);
    expect(own.eval_count).to.be.at.most(2);

    const gen = await user.generate({ model: 'mario', prompt: 'Jump!', stream: false });
    const genLong = await user.chat({ model: BASE, messages: [{ role: 'system', content: SYSTEM }, ...HISTORY, { role: 'user', content: 'Jump!' }], options: { temperature: 0, num_predict: 6, stop: ['zzzz'] }, stream: false });
    expect(gen.prompt_eval_count).to.equal(genLong.prompt_eval_count);
    expect(gen.response).to.equal(genLong.message.content);
  });

  it("OpenAI chat and completions name the preset and get its system prompt, history and parameters", async () => {
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: USER });
    const question = { role: 'user' as const, content: 'Where is the princess?' };
    const viaPreset = await openai.chat.completions.create({ model: 'mario', messages: [question] });
    const longWay = await openai.chat.completions.create({
      model: BASE,
      messages: [{ role: 'system', content: SYSTEM }, ...HISTORY, question],
      temperature: 0,
      max_tokens: 6,
      stop: ['zzzz'],
    });
    expect(viaPreset.usage!.prompt_tokens).to.equal(longWay.usage!.prompt_tokens);
    expect(viaPreset.choices[0]!.message.content).to.equal(longWay.choices[0]!.message.content);
    expect(viaPreset.usage!.completion_tokens).to.equal(longWay.usage!.completion_tokens).and.be.at.most(6);

    // Completions: the preset's parameters (num_predict 6 over the route's default of 16, temperature 0); no template.
    const c = await openai.completions.create({ model: 'mario', prompt: 'Once upon a time' });
    const cLong = await openai.completions.create({ model: BASE, prompt: 'Once upon a time', temperature: 0, max_tokens: 6, stop: ['zzzz'] });
    expect(c.usage!.prompt_tokens).to.equal(cLong.usage!.prompt_tokens);
    expect(c.choices[0]!.text).to.equal(cLong.choices[0]!.text);
    expect(c.usage!.completion_tokens).to.equal(cLong.usage!.completion_tokens).and.be.at.most(6);
  });

  it('Anthropic Messages, OpenAI Responses and /v1/models know the preset too', async () => {
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: USER });
    const question = { role: 'user' as const, content: 'Where is the princess?' };
    const a = await anthropic.messages.create({ model: 'mario', max_tokens: 6, messages: [question] });
    // (This SDK version's types omit `temperature`; the API takes it.)
    const aLong = await anthropic.messages.create({ model: BASE, max_tokens: 6, temperature: 0, stop_sequences: ['zzzz'], system: SYSTEM, messages: [...HISTORY, question] } as never as Anthropic.MessageCreateParamsNonStreaming);
    // Anthropic's input_tokens leave out what was read from the prefix cache.
    const prompt = (u: Anthropic.Usage) => u.input_tokens + (u.cache_read_input_tokens ?? 0);
    expect(prompt(a.usage)).to.equal(prompt(aLong.usage));
    expect(a.content).to.deep.equal(aLong.content);
    const counted = await anthropic.messages.countTokens({ model: 'mario', messages: [question] });
    expect(counted.input_tokens).to.equal(prompt(aLong.usage));

    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: USER });
    const r = await openai.responses.create({ model: 'mario', input: 'Where is the princess?' });
    const rLong = await openai.responses.create({ model: BASE, instructions: SYSTEM, input: [...HISTORY, question], temperature: 0, max_output_tokens: 6 });
    expect(r.usage!.input_tokens).to.equal(rLong.usage!.input_tokens);
    expect(r.output_text).to.equal(rLong.output_text);

    const listed = (await openai.models.list()).data as unknown as Record<string, unknown>[];
    expect(listed.map((m) => m.id)).to.deep.equal([BASE, 'mario']);
    expect(listed[1]).to.include({ object: 'model', parent: BASE, preset: true, default: false, ready: true });
    expect(await openai.models.retrieve('mario')).to.deep.include({ id: 'mario', parent: BASE });
  });

  it('a preset of a preset is flattened; copy and delete take presets', async () => {
    await admin.create({ model: 'luigi:v1', from: 'mario', system: 'You are Luigi.', parameters: { num_predict: 3 }, stream: false });
    const show = await user.show({ model: 'luigi:v1' });
    expect(show.modelfile).to.include(`FROM ${BASE}\n`);
    expect(show.system).to.equal('You are Luigi.');
    // Inherited from mario where luigi sets nothing; luigi's own num_predict wins.
    expect(show.parameters).to.match(/^temperature\s+0$/m).and.match(/^num_predict\s+3$/m);
    expect(show.messages).to.deep.equal(HISTORY);
    const r = await user.chat({ model: 'luigi:v1', messages: [{ role: 'user', content: 'hi' }], stream: false });
    expect(r.eval_count).to.be.at.most(3);

    await admin.copy({ source: 'luigi:v1', destination: 'luigi2' });
    expect((await user.show({ model: 'luigi2' })).system).to.equal('You are Luigi.');
    await admin.delete({ model: 'luigi2' });
    await admin.delete({ model: 'luigi:v1' });
    const names = (await user.list()).models.map((m) => m.name);
    expect(names).to.include('mario:latest').and.not.include('luigi2:latest').and.not.include('luigi:v1');
    expect(existsSync(join(server.dir, 'pulled', 'presets', 'luigi2.json'))).to.equal(false);
    let e = await rejection(admin.delete({ model: 'luigi2' }));
    expect(e.status_code).to.equal(404);
    e = await rejection(user.chat({ model: 'luigi2', messages: [{ role: 'user', content: 'hi' }], stream: false }));
    expect(e.status_code).to.equal(404);
  });

  it('refuses what it cannot build, by name, and needs the admin scope', async () => {
    const create = (extra: Record<string, unknown>) => admin.create({ model: 'bad', from: BASE, stream: false, ...extra } as never);
    let e = await rejection(create({ files: { 'model.gguf': `sha256:${'0'.repeat(64)}` } }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include("'files' is not supported").and.include('/api/pull');
    e = await rejection(create({ adapters: { 'lora.gguf': `sha256:${'0'.repeat(64)}` } }));
    expect(e.error).to.include("'adapters' is not supported").and.include('/v1/admin/adapters');
    e = await rejection(create({ quantize: 'q4_K_M' }));
    expect(e.error).to.include("'quantize' is not supported");
    e = await rejection(create({ template: '{{ .Prompt }}' }));
    expect(e.error).to.include("'template' is not supported");
    e = await rejection(create({ parameters: { num_gpu: 1 } }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include('parameters').and.include('num_gpu');
    e = await rejection(create({ parameters: { mirostat: 2 } }));
    expect(e.error).to.include('mirostat is not supported');
    e = await rejection(create({ parameters: { num_ctx: 1_000_000 } }));
    expect(e.error).to.include('num_ctx 1000000 is larger than');
    e = await rejection(create({ from: `${BASE}:some-adapter` }));
    expect(e.status_code).to.equal(400);
    expect(e.error).to.include('LoRA adapter').and.include(`from: '${BASE}'`);
    e = await rejection(create({ from: 'nope' }));
    expect(e.status_code).to.equal(404);
    e = await rejection(create({ from: undefined }));
    expect(e.error).to.include("'from'");
    e = await rejection(admin.create({ model: BASE, from: BASE, stream: false }));
    expect(e.error).to.include('is a model this server serves');
    e = await rejection(admin.create({ model: '../escape', from: BASE, stream: false }));
    expect(e.error).to.include('is not a valid model name');
    e = await rejection(user.create({ model: 'mine', from: BASE, stream: false }));
    expect(e.status_code).to.equal(403);
    // Nothing was written for any of them.
    expect(readdirSync(join(server.dir, 'pulled', 'presets'))).to.deep.equal(['mario.json']);
    e = await rejection(admin.push({ model: 'mario' }));
    expect(e.status_code).to.equal(501);
    // `ollama create` from a local file: the blob is never there, and its upload is a 501 saying what to do.
    const blob = `${server.url}/api/blobs/sha256:${'a'.repeat(64)}`;
    const auth = { authorization: `Bearer ${ADMIN}` };
    expect((await fetch(blob, { method: 'HEAD', headers: auth })).status).to.equal(404);
    const upload = await fetch(blob, { method: 'POST', headers: auth, body: 'GGUF' });
    expect(upload.status).to.equal(501);
    expect(((await upload.json()) as { error: string }).error).to.include('/api/blobs').and.include('POST /api/pull');
  });

  it('inferctl create -f Modelfile: created and served; bad files and refusals exit non-zero with the reason', async () => {
    const cli = async (modelfile: string, name = 'pirate') => {
      const file = join(server.dir, `Modelfile-${name}`);
      writeFileSync(file, modelfile);
      return runProcess(process.execPath, [CLI, 'create', name, '-f', file, '--url', server.url, '--api-key', ADMIN], { env: { PATH: process.env.PATH ?? '', HOME: server.dir } });
    };
    const ok = await cli(`# a pirate\nFROM ${BASE}\nSYSTEM """Talk like a pirate."""\nPARAMETER temperature 0\nPARAMETER num_predict 4\nMESSAGE user Ahoy?\nMESSAGE assistant Arr!\n`);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.equal(`created pirate from ${BASE}\n`);
    const show = await user.show({ model: 'pirate' });
    expect(show.system).to.equal('Talk like a pirate.');
    expect(show.messages).to.deep.equal([
      { role: 'user', content: 'Ahoy?' },
      { role: 'assistant', content: 'Arr!' },
    ]);
    const r = await user.chat({ model: 'pirate', messages: [{ role: 'user', content: 'Where is the gold?' }], stream: false });
    expect(r.eval_count).to.be.at.most(4);

    let bad = await cli(`FROM ${BASE}\nPARAMETER temperature hot\n`, 'broken');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('line 2: PARAMETER temperature needs a number');
    bad = await cli('FROM ./weights.gguf\n', 'fromfile');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('builds on a served model').and.include('inferctl admin models --load ./weights.gguf');
    bad = await cli(`FROM ${BASE}\nTEMPLATE {{ .Prompt }}\n`, 'templated');
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.include("'template' is not supported").and.include('HTTP 400');
    expect(readdirSync(join(server.dir, 'pulled', 'presets')).sort()).to.deep.equal(['mario.json', 'pirate.json']);
  });

  it('a preset whose base is no longer served is a 404 naming both, and can still be deleted', async () => {
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` };
    const load = await fetch(`${server.url}/v1/admin/models`, { method: 'POST', headers: auth, body: JSON.stringify({ id: 'spare', path: await tinyModel() }) });
    expect(load.status, await load.clone().text()).to.equal(201);
    await admin.create({ model: 'spare-preset', from: 'spare', system: 'hi', stream: false });
    expect((await user.chat({ model: 'spare-preset', messages: [{ role: 'user', content: 'x' }], options: { num_predict: 1 }, stream: false })).done).to.equal(true);
    expect((await fetch(`${server.url}/v1/admin/models/spare`, { method: 'DELETE', headers: auth })).status).to.equal(200);
    const e = await rejection(user.chat({ model: 'spare-preset', messages: [{ role: 'user', content: 'x' }], stream: false }));
    expect(e.status_code).to.equal(404);
    expect(e.error).to.include("'spare-preset' was created from 'spare', which this server does not serve now");
    expect((await user.list()).models.map((m) => m.name)).to.include('spare-preset:latest');
    await admin.delete({ model: 'spare-preset' });
    expect((await user.list()).models.map((m) => m.name)).to.not.include('spare-preset:latest');
  });
});
