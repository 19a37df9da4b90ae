/**
 * Bad input against the real server: every error in OpenAI's shape with the right status, and
 * the server still serving afterwards.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';
import { gv, writeGguf } from '../../src/runtime/gguf/writer.js';
import { GgmlType } from '../../src/runtime/gguf/format.js';

const MODEL = 'tiny-seed0';

async function post(url: string, path: string, body: string | object, headers: Record<string, string> = {}) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text.length > 0 ? (JSON.parse(text) as { error: { message: string; type: string; param: string | null; code: string } }) : null };
}

describe('errors on the real server', function () {
  this.timeout(120_000);
  let server: RunningServer;

  before(async () => {
    server = await startServer({ INFERFLUX_CONTEXT_SIZE: '256', INFERFLUX_MAX_BODY_BYTES: '65536' });
  });
  after(async () => {
    await server?.stop();
  });

  it('malformed JSON is 400 invalid_json', async () => {
    const r = await post(server.url, '/v1/chat/completions', '{"model": "x", "messages": [');
    expect(r.status).to.equal(400);
    expect(r.body!.error).to.include({ code: 'invalid_json', type: 'invalid_request_error' });
  });

  it('a schema violation is 400 naming the parameter', async () => {
    const r = await post(server.url, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 7 });
    expect(r.status).to.equal(400);
    expect(r.body!.error.code).to.equal('invalid_request');
    expect(r.body!.error.param).to.equal('temperature');
    const r2 = await post(server.url, '/v1/chat/completions', { model: MODEL });
    expect(r2.status).to.equal(400);
    expect(r2.body!.error.param).to.equal('messages');
  });

  it('an unknown model is 404 model_not_found', async () => {
    const r = await post(server.url, '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    expect(r.status).to.equal(404);
    expect(r.body!.error).to.include({ code: 'model_not_found', param: 'model' });
  });

  it('a body over the limit is 413', async () => {
    const r = await post(server.url, '/v1/completions', { model: MODEL, prompt: 'x'.repeat(70_000) });
    expect(r.status).to.equal(413);
    expect(r.body!.error.code).to.equal('request_too_large');
  });

  it('a prompt longer than the context is 400 context_length_exceeded', async () => {
    const r = await post(server.url, '/v1/completions', { model: MODEL, prompt: 'hello world '.repeat(400) });
    expect(r.status).to.equal(400);
    expect(r.body!.error.code).to.equal('context_length_exceeded');
    const r2 = await post(server.url, '/v1/completions', { model: MODEL, prompt: 'hello', max_tokens: 300 });
    expect(r2.status).to.equal(400);
    expect(r2.body!.error).to.include({ code: 'context_length_exceeded', param: 'max_tokens' });
    // Chat's newer name for the cap is the one named when the client used it.
    const r3 = await post(server.url, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_completion_tokens: 300 });
    expect(r3.status).to.equal(400);
    expect(r3.body!.error).to.include({ code: 'context_length_exceeded', param: 'max_completion_tokens' });
    expect(r3.body!.error.message).to.include('plus max_completion_tokens (300)');
  });

  it('token ids and logit_bias outside the vocabulary are 400, not a native crash', async () => {
    const r = await post(server.url, '/v1/completions', { model: MODEL, prompt: [1, 2, 99999999] });
    expect(r.status).to.equal(400);
    expect(r.body!.error.param).to.equal('prompt');
    const r2 = await post(server.url, '/v1/completions', { model: MODEL, prompt: 'hi', logit_bias: { '9999999': 5 } });
    expect(r2.status).to.equal(400);
    expect(r2.body!.error.param).to.equal('logit_bias');
  });

  it('unknown routes are 404 and the server still serves', async () => {
    const r = await fetch(`${server.url}/v1/nothing`);
    expect(r.status).to.equal(404);
    const ok = await post(server.url, '/v1/completions', { model: MODEL, prompt: 'still alive', max_tokens: 3 });
    expect(ok.status).to.equal(200);
  });
});

describe('no model loaded', function () {
  this.timeout(120_000);
  let server: RunningServer;

  before(async () => {
    // A GGUF that passes validation (structure and the shared hyperparameter rules) but that
    // llama.cpp refuses (unknown architecture): the engine cannot load it, the server stays up and
    // answers 503 instead of inventing text.
    const { tinyModel } = await import('../helpers/server.js');
    await tinyModel();
    const dir = (await import('node:os')).tmpdir();
    const path = join(dir, `ifx-unloadable-${process.pid}.gguf`);
    await writeGguf(path, [
      ['general.architecture', gv.string('no-such-arch')],
      ['general.alignment', gv.u32(32)],
      ['no-such-arch.context_length', gv.u32(64)],
      ['no-such-arch.embedding_length', gv.u32(32)],
      ['no-such-arch.block_count', gv.u32(1)],
    ], [{ name: 'w', dims: [32], type: GgmlType.F32, data: () => [new Uint8Array(128)] }]);
    server = await startServer({ INFERFLUX_MODEL_PATH: path });
  });
  after(async () => {
    await server?.stop();
  });

  it('generation is 503 model_not_loaded and /readyz is 503', async () => {
    const r = await post(server.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] });
    expect(r.status).to.equal(503);
    expect(r.body!.error.code).to.equal('model_not_loaded');
    expect(r.headers.get('retry-after')).to.be.a('string');
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).to.equal(503);
    const live = await fetch(`${server.url}/livez`);
    expect(live.status).to.equal(200);
  });

  it("llama.cpp's load error reaches stderr from the native logger, not through a worker's JS callback", () => {
    // The JS log callback is one per process, bound to the last thread that called getLlama; a
    // line delivered to a worker being terminated aborted the process (src/runtime/llama/thread-llama.ts).
    // Detached, llama.cpp writes the line itself: no "[node-llama-cpp]" prefix.
    const lines = server.logs().split('\n').filter((l) => l.includes("unknown model architecture: 'no-such-arch'"));
    expect(lines, 'the load error is still shown').to.not.be.empty;
    for (const l of lines) expect(l).to.not.include('[node-llama-cpp]');
  });

  it('the failed engine workers end their threads by themselves (never terminated mid native work)', async () => {
    // ActorSystem.endFailedWorker: terminate() while a failed load's async work is pending aborts
    // the process; the workers close their port and exit once it has settled.
    const failed = server.logs().match(/engine ifx-unloadable-\d+#\d+ failed to start/g) ?? [];
    expect(failed.length).to.be.greaterThan(0);
    const ended = (): number => (server.logs().match(/engine ifx-unloadable-\d+#\d+ ended its thread after its failed start/g) ?? []).length;
    for (let i = 0; i < 200 && ended() < failed.length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(ended(), server.logs()).to.equal(failed.length);
    expect(server.logs()).to.not.include('after its failed start; terminating it');
    expect((await fetch(`${server.url}/livez`)).status).to.equal(200);
  });
});
