/**
 * LoRA adapters on a real server with real llama.cpp: adapters generated for the tiny model are
 * loaded at runtime, chosen by `base:adapter` and by the `adapter` field (OpenAI chat, completions,
 * responses, Anthropic, Ollama), change the greedy output, match a fresh load of the same file,
 * never share prefix KV or cached responses with the base, and unload while streams run under them
 * with none failing. Errors, RBAC (admin and adapter-manager), audit lines and `inferctl admin adapters`.
 *
 * One engine worker with four sequences: every base/adapter alternation is a swap on that worker,
 * so the prefix-cache assertions are exact.
 */
import { expect } from 'chai';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateLora } from '../../src/runtime/gguf/lora.js';
import { readGgufHeader } from '../../src/runtime/gguf/reader.js';
import { runProcess } from '../helpers/process.js';
import { api, startServer, tinyModel, type RunningServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const ADMIN = 'ifx-test-lora-admin-0123456789';
const ADAPTERS = 'ifx-test-lora-adapters-0123456789';
const USER = 'ifx-test-lora-user-0123456789';
const INFERCTL = new URL('../../dist/cli/inferctl.js', import.meta.url).pathname;
const BASE = 'tiny-seed0';
/** About 100 tokens: several prefix blocks (32 tokens each), so reuse shows in cached_tokens. */
const LONG = 'The quick brown fox jumps over the lazy dog while the sleepy cat watches from the warm windowsill. '.repeat(3);

interface Completion {
  text: string;
  cached: number;
  model: string;
}

/** Greedy outputs of the unified server, for the disaggregated one to match. */
const expected = { base: '', a1: '' };

describe('LoRA adapters: load, choose, isolate, unload under load (real server)', function () {
  this.timeout(180_000);
  let dir: string;
  let server: RunningServer;

  const admin = (method: string, path: string, body?: unknown, key: string | null = ADMIN) => api(server, method, path, body, key);
  /** A greedy completion; `tag` makes the request distinct for the response cache without changing the output. */
  async function complete(body: Record<string, unknown>, tag = 'a'): Promise<Completion> {
    const r = await api(server, 'POST', '/v1/completions', { prompt: 'Hello there', max_tokens: 10, temperature: 0, ignore_eos: true, stop: [`\u0001${tag}`], ...body }, USER);
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return { text: r.body.choices[0].text, cached: r.body.usage.prompt_tokens_details.cached_tokens, model: r.body.model };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-lora-'));
    const base = await readGgufHeader(await tinyModel());
    await generateLora({ base, seed: 1, outPath: join(dir, 'a1.gguf') });
    await generateLora({ base, seed: 2, outPath: join(dir, 'a2.gguf') });
    copyFileSync(join(dir, 'a1.gguf'), join(dir, 'a1-copy.gguf'));
    server = await startServer({
      INFERFLUX_API_KEYS: `${ADMIN}:admin|generate|read,${ADAPTERS}:adapter-manager,${USER}:generate|read`,
      INFERFLUX_DECODE_POOL_SIZE: '1',
      INFERFLUX_THREADS_PER_WORKER: '1',
      INFERFLUX_CORES: '2',
      INFERFLUX_SEQUENCES_PER_WORKER: '4',
      INFERFLUX_CONTEXT_SIZE: '1024',
      INFERFLUX_ADMIN_LOAD_DIR: dir,
      INFERFLUX_RESPONSE_CACHE: '1',
      INFERFLUX_AUDIT_FLUSH_INTERVAL_MS: '20',
    });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('RBAC: 401 without a key, 403 for generate|read; adapter-manager manages adapters but not models', async () => {
    expect((await admin('GET', '/v1/admin/adapters', undefined, null)).status).to.equal(401);
    for (const [method, path, body] of [
      ['GET', '/v1/admin/adapters', undefined],
      ['POST', '/v1/admin/adapters', { model: BASE, id: 'x', path: 'a1.gguf' }],
      ['DELETE', '/v1/admin/adapters/x', undefined],
    ] as const) {
      const r = await admin(method, path, body, USER);
      expect([r.status, r.body.error.code], `${method} ${path}`).to.deep.equal([403, 'forbidden']);
    }
    expect((await admin('GET', '/v1/admin/adapters', undefined, ADAPTERS)).body).to.deep.equal({ object: 'list', data: [] });
    expect((await admin('GET', '/v1/admin/models', undefined, ADAPTERS)).status).to.equal(403);
  });

  it('loads adapters (adapter-manager key), lists them, and /v1/models shows base:adapter entries', async () => {
    const r = await admin('POST', '/v1/admin/adapters', { model: BASE, id: 'a1', path: 'a1.gguf', scale: 1 }, ADAPTERS);
    expect(r.status, JSON.stringify(r.body)).to.equal(201);
    expect(r.body).to.deep.include({ id: 'a1', object: 'adapter', model: BASE, path: join(dir, 'a1.gguf'), scale: 1, rank: 8, alpha: 16, target_tensors: 7, state: 'ready', inflight: 0 });
    expect(r.body.sha256).to.match(/^[0-9a-f]{64}$/);
    expect((await admin('POST', '/v1/admin/adapters', { model: BASE, id: 'a2', path: join(dir, 'a2.gguf') })).status).to.equal(201);
    const list = await admin('GET', '/v1/admin/adapters');
    expect(list.body.data.map((a: { id: string; scale: number }) => [a.id, a.scale])).to.deep.equal([
      ['a1', 1],
      ['a2', 1],
    ]);
    const models = (await api(server, 'GET', '/v1/models', undefined, USER)).body.data;
    expect(models.map((m: { id: string }) => m.id)).to.deep.equal([BASE, `${BASE}:a1`, `${BASE}:a2`]);
    expect(models[0].adapters).to.deep.equal(['a1', 'a2']);
    expect(models[1]).to.deep.include({ parent: BASE, state: 'ready', ready: true, default: false });
    expect(models[1].adapter).to.deep.include({ id: 'a1', scale: 1, rank: 8, alpha: 16 });
    expect((await api(server, 'GET', `/v1/models/${BASE}:a1`, undefined, USER)).body).to.deep.equal(models[1]);
    expect((await api(server, 'GET', `/v1/models/${BASE}:zz`, undefined, USER)).status).to.equal(404);
  });

  it('both forms choose the adapter; output differs from the base and between seeds; the response cache never crosses them', async () => {
    const base = await complete({ model: BASE });
    const byId = await complete({ model: `${BASE}:a1` });
    const byField = await complete({ model: BASE, adapter: 'a1' }, 'b');
    const other = await complete({ model: `${BASE}:a2` });
    expect(byId.model).to.equal(`${BASE}:a1`);
    expect(byField).to.deep.equal({ ...byId, cached: byField.cached });
    expect(byId.text).to.not.equal(base.text);
    expect(other.text).to.not.equal(base.text);
    expect(other.text).to.not.equal(byId.text);
    expected.base = base.text;
    expected.a1 = byId.text;
    // The default model with only the adapter field.
    expect((await complete({ adapter: 'a1' }, 'c')).text).to.equal(byId.text);
    // Base again, same request: the base answer (a cached adapter answer would be wrong).
    expect((await complete({ model: BASE })).text).to.equal(base.text);
    // Chat: by id and by field agree, and differ from the base.
    const chat = async (body: Record<string, unknown>) => {
      const r = await api(server, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0, ignore_eos: true, ...body }, USER);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return r.body.choices[0].message.content as string;
    };
    const chatA = await chat({ model: `${BASE}:a1` });
    expect(await chat({ model: BASE, adapter: 'a1', user: 'x' })).to.equal(chatA);
    expect(await chat({ model: BASE })).to.not.equal(chatA);
    // Adapter hits: every request above that named an adapter (answers from the response cache too).
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const hits = (adapter: string) => Number(new RegExp(`^inferflux_adapter_requests_total\\{model="${BASE}",adapter="${adapter}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    expect(hits('a1')).to.equal(5);
    expect(hits('a2')).to.equal(1);
  });

  it('every protocol with a model field takes the adapter: responses, Anthropic, Ollama (id form and field)', async () => {
    const resp = async (body: Record<string, unknown>) => {
      const r = await api(server, 'POST', '/v1/responses', { input: 'Hi', max_output_tokens: 8, temperature: 0, ...body }, USER);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return r.body.output[0].content[0].text as string;
    };
    expect(await resp({ model: `${BASE}:a1` })).to.equal(await resp({ model: BASE, adapter: 'a1', user: 'u' }));
    expect(await resp({ model: `${BASE}:a1` })).to.not.equal(await resp({ model: BASE }));

    const anthropic = async (body: Record<string, unknown>) => {
      const r = await api(server, 'POST', '/v1/messages', { max_tokens: 8, temperature: 0, messages: [{ role: 'user', content: 'Hi' }], ...body }, USER);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return r.body.content[0].text as string;
    };
    expect(await anthropic({ model: `${BASE}:a1` })).to.equal(await anthropic({ model: BASE, adapter: 'a1', metadata: { user_id: 'u' } }));
    expect(await anthropic({ model: `${BASE}:a1` })).to.not.equal(await anthropic({ model: BASE }));

    const ollama = async (body: Record<string, unknown>) => {
      const r = await api(server, 'POST', '/api/generate', { prompt: 'Hi', stream: false, options: { temperature: 0, num_predict: 8 }, ...body }, USER);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return r.body.response as string;
    };
    expect(await ollama({ model: `${BASE}:a1` })).to.equal(await ollama({ model: BASE, adapter: 'a1', keep_alive: '5m' }));
    expect(await ollama({ model: `${BASE}:a1` })).to.not.equal(await ollama({ model: BASE }));
  });

  it('unknown adapters: 404 adapter_not_found in each protocol shape; a model/field mismatch is 400', async () => {
    const r = await api(server, 'POST', '/v1/chat/completions', { model: `${BASE}:nope`, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }, USER);
    expect(r.status).to.equal(404);
    expect(r.body).to.deep.equal({
      error: { message: `The adapter 'nope' is not loaded for model '${BASE}' (GET /v1/admin/adapters lists them).`, type: 'invalid_request_error', param: 'adapter', code: 'adapter_not_found' },
    });
    expect((await api(server, 'POST', '/v1/completions', { adapter: 'nope', prompt: 'x', max_tokens: 2 }, USER)).body.error.code).to.equal('adapter_not_found');
    const mismatch = await api(server, 'POST', '/v1/completions', { model: `${BASE}:a1`, adapter: 'a2', prompt: 'x', max_tokens: 2 }, USER);
    expect([mismatch.status, mismatch.body.error.param]).to.deep.equal([400, 'adapter']);
    const ollama = await api(server, 'POST', '/api/generate', { model: BASE, adapter: 'nope', prompt: 'Hi', stream: false }, USER);
    expect(ollama.status).to.equal(404);
    expect(ollama.body.error).to.include("adapter 'nope'");
    const anthropic = await api(server, 'POST', '/v1/messages', { model: `${BASE}:nope`, max_tokens: 2, messages: [{ role: 'user', content: 'Hi' }] }, USER);
    expect([anthropic.status, anthropic.body.type]).to.deep.equal([404, 'error']);
  });

  it('prefix cache: KV computed under the base or another adapter is never reused; under the same adapter it is', async () => {
    const prompt = LONG;
    const base1 = await complete({ model: BASE, prompt }, 'p1');
    const base2 = await complete({ model: BASE, prompt }, 'p2');
    expect(base2.cached, 'base reuses its own prefix').to.be.greaterThan(32);
    expect(base2.text).to.equal(base1.text);
    const a1 = await complete({ model: `${BASE}:a1`, prompt }, 'p3');
    expect(a1.cached, 'a1 after the base: nothing reused').to.equal(0);
    const a1again = await complete({ model: `${BASE}:a1`, prompt }, 'p4');
    expect(a1again.cached, 'a1 reuses its own prefix').to.be.greaterThan(32);
    expect(a1again.text).to.equal(a1.text);
    const a2 = await complete({ model: `${BASE}:a2`, prompt }, 'p5');
    expect(a2.cached, 'a2 after a1: nothing reused').to.equal(0);
    // The base's own prefix may come back from the host page pool (saved under the base's namespace),
    // and a1's from a1's; whatever is reused, the answers are each one's own.
    const base3 = await complete({ model: BASE, prompt }, 'p6');
    expect(base3.text).to.equal(base1.text);
    const a1third = await complete({ model: `${BASE}:a1`, prompt }, 'p7');
    expect(a1third.text).to.equal(a1.text);
    expect(a1.text).to.not.equal(base1.text);
    expect(a2.text).to.not.equal(a1.text);
  });

  it('errors: 409 adapter_exists, 400 bad scale and path, 422 not an adapter of this model, 404 unknown model and DELETE id', async () => {
    const load = (body: Record<string, unknown>) => admin('POST', '/v1/admin/adapters', { model: BASE, ...body });
    let r = await load({ id: 'a1', path: 'a2.gguf' });
    expect([r.status, r.body.error.code]).to.deep.equal([409, 'adapter_exists']);
    for (const scale of [0, -1, 17]) {
      r = await load({ id: 'bad', path: 'a1.gguf', scale });
      expect([r.status, r.body.error.code, r.body.error.param], `scale ${scale}`).to.deep.equal([400, 'invalid_request', 'scale']);
    }
    r = await load({ id: 'bad', path: 'a1.gguf', scale: 'big' });
    expect(r.status).to.equal(400);
    r = await load({ id: 'bad', path: '../etc/passwd' });
    expect([r.status, r.body.error.code, r.body.error.param]).to.deep.equal([400, 'invalid_model_path', 'path']);
    r = await load({ id: 'bad', path: await tinyModel() });
    expect([r.status, r.body.error.code]).to.deep.equal([400, 'invalid_model_path']);
    copyFileSync(await tinyModel(), join(dir, 'model.gguf'));
    r = await load({ id: 'bad', path: 'model.gguf' });
    expect([r.status, r.body.error.code]).to.deep.equal([422, 'invalid_adapter_file']);
    expect(r.body.error.message).to.include('general.type is missing');
    // An adapter whose halves do not fit the base: rank of one half changed.
    const bytes = readFileSync(join(dir, 'a1.gguf'));
    writeFileSync(join(dir, 'garbage.gguf'), Buffer.concat([bytes.subarray(0, 64), Buffer.from('not a gguf tail')]));
    r = await load({ id: 'bad', path: 'garbage.gguf' });
    expect([r.status, r.body.error.code]).to.deep.equal([422, 'invalid_adapter_file']);
    r = await admin('POST', '/v1/admin/adapters', { model: 'nope', id: 'bad', path: 'a1.gguf' });
    expect([r.status, r.body.error.code]).to.deep.equal([404, 'model_not_found']);
    r = await load({ id: 'has:colon', path: 'a1.gguf' });
    expect([r.status, r.body.error.param]).to.deep.equal([400, 'id']);
    r = await load({ id: 'ok', path: 'a1.gguf', rank: 4 });
    expect([r.status, r.body.error.code]).to.deep.equal([400, 'invalid_request']);
    r = await admin('DELETE', '/v1/admin/adapters/nope');
    expect([r.status, r.body.error.code]).to.deep.equal([404, 'adapter_not_found']);
    expect((await admin('GET', '/v1/admin/adapters')).body.data.map((a: { id: string }) => a.id)).to.deep.equal(['a1', 'a2']);
  });

  it('unload while streams run under the adapter: all finish (0 failed), new ones get 503 then 404, a fresh load matches', async () => {
    const before = await complete({ model: `${BASE}:a1` }, 'u0');
    const opened: (() => void)[] = [];
    const firsts = Array.from({ length: 3 }, () => new Promise<void>((r) => opened.push(r)));
    const streams = firsts.map((_, i) =>
      (async () => {
        const res = await fetch(`${server.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${USER}` },
          body: JSON.stringify({ model: `${BASE}:a1`, messages: [{ role: 'user', content: `Count ${i}` }], max_tokens: 48, ignore_eos: true, temperature: 0, stream: true, stream_options: { include_usage: true } }),
        });
        if (res.status !== 200) return { status: res.status, tokens: 0, finish: 'none' };
        let buf = '';
        let tokens = 0;
        let finish = 'none';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += Buffer.from(chunk).toString();
          let at: number;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            const line = buf.slice(0, at).trim();
            buf = buf.slice(at + 2);
            if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
            const ev = JSON.parse(line.slice(6));
            if (ev.error) return { status: 200, tokens, finish: `error:${ev.error.code}` };
            if (ev.choices?.[0]?.delta?.content) opened[i]!();
            if (ev.choices?.[0]?.finish_reason) finish = ev.choices[0].finish_reason;
            if (ev.usage) tokens = ev.usage.completion_tokens;
          }
        }
        return { status: 200, tokens, finish };
      })(),
    );
    await Promise.all(firsts);
    const unloading = admin('DELETE', '/v1/admin/adapters/a1');
    const refused = await until('adapter_unloading', 10_000, async () => {
      const r = await api(server, 'POST', '/v1/completions', { model: `${BASE}:a1`, prompt: 'x', max_tokens: 1 }, USER);
      return r.status === 503 ? r : undefined;
    });
    expect(refused.body.error.code).to.equal('adapter_unloading');
    const unloaded = await unloading;
    expect([unloaded.status, unloaded.body]).to.deep.equal([200, { id: 'a1', object: 'adapter', deleted: true }]);
    const outcomes = await Promise.all(streams);
    expect(outcomes).to.deep.equal(outcomes.map(() => ({ status: 200, tokens: 48, finish: 'length' })));
    const gone = await api(server, 'POST', '/v1/completions', { model: `${BASE}:a1`, prompt: 'x', max_tokens: 1 }, USER);
    expect([gone.status, gone.body.error.code]).to.deep.equal([404, 'adapter_not_found']);
    // A fresh load of the same weights (another file, another id) gives the same output.
    expect((await admin('POST', '/v1/admin/adapters', { model: BASE, id: 'fresh', path: 'a1-copy.gguf' })).status).to.equal(201);
    expect((await complete({ model: `${BASE}:fresh` }, 'u1')).text).to.equal(before.text);
  });

  it('audits adapter changes (with the adapter) and completions under an adapter', async () => {
    const events = await until('audit lines', 10_000, async () => {
      const lines = readFileSync(join(server.dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      return lines.some((e) => e.decision === 'adapter.unload') && lines.some((e) => e.event === 'completion' && e.adapter === 'fresh') ? lines : undefined;
    });
    const admins = events.filter((e) => e.event === 'admin' && String(e.decision).startsWith('adapter.'));
    const decisions = admins.map((e) => e.decision);
    for (const d of ['adapter.load', 'adapter.unload', 'adapter.load:error:adapter_exists', 'adapter.load:error:invalid_adapter_file', 'adapter.load:error:invalid_model_path', 'adapter.unload:error:adapter_not_found']) {
      expect(decisions, d).to.include(d);
    }
    expect(admins.find((e) => e.decision === 'adapter.load')).to.deep.include({ model: BASE, adapter: 'a1', detail: `model=${BASE} id=a1 path=a1.gguf scale=1` });
    const completions = events.filter((e) => e.event === 'completion');
    expect(completions.some((e) => e.adapter === 'a1' && e.model === BASE)).to.equal(true);
    expect(completions.some((e) => e.adapter === undefined && e.model === BASE)).to.equal(true);
  });

  it('inferctl admin adapters: --list, --load --model --id --scale, --unload, with exit codes', async () => {
    const env = { PATH: process.env.PATH ?? '', INFERCTL_URL: server.url, INFERCTL_API_KEY: ADMIN };
    const cli = (...args: string[]) => runProcess(process.execPath, [INFERCTL, 'admin', 'adapters', ...args], { env });
    let r = await cli('--load', 'a2.gguf', '--model', BASE, '--id', 'half', '--scale', '0.5');
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.include({ id: 'half', model: BASE, scale: 0.5, state: 'ready' });
    r = await cli('--list', '--json');
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout).data.map((a: { id: string }) => a.id)).to.deep.equal(['a2', 'fresh', 'half']);
    // Scale matters: half strength is neither the base nor full strength.
    const half = await complete({ model: `${BASE}:half` }, 'i1');
    expect(half.text).to.not.equal((await complete({ model: `${BASE}:a2` }, 'i2')).text);
    r = await cli('--unload', 'half');
    expect([r.code, JSON.parse(r.stdout).deleted]).to.deep.equal([0, true]);
    r = await cli('--unload', 'half');
    expect(r.code).to.equal(4);
    expect(r.stderr).to.include('adapter_not_found');
    r = await cli('--load', 'a2.gguf', '--model', BASE, '--id', 'dup-of-a2', '--scale', '99');
    expect(r.code).to.equal(1);
    expect((await cli('--load', 'a2.gguf', '--id', 'x')).code).to.equal(2);
    expect((await cli('--load', 'a2.gguf', '--model', BASE, '--id', 'x', '--scale', 'big')).code).to.equal(2);
    expect((await cli('--unload', 'a', '--load', 'b')).code).to.equal(2);
    r = await runProcess(process.execPath, [INFERCTL, 'admin', 'adapters', '--list'], { env: { ...env, INFERCTL_API_KEY: USER } });
    expect(r.code).to.equal(3);
  });
});

describe('LoRA adapters with disaggregated prefill/decode (real server)', function () {
  this.timeout(120_000);
  let dir: string;
  let server: RunningServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-lora-pd-'));
    await generateLora({ base: await readGgufHeader(await tinyModel()), seed: 1, outPath: join(dir, 'a1.gguf') });
    server = await startServer({
      INFERFLUX_API_KEYS: `${ADMIN}:admin|generate|read`,
      INFERFLUX_DECODE_POOL_SIZE: '1',
      INFERFLUX_PREFILL_POOL_SIZE: '1',
      INFERFLUX_THREADS_PER_WORKER: '1',
      INFERFLUX_CORES: '2',
      INFERFLUX_ADMIN_LOAD_DIR: dir,
    });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the prefill worker computes the prompt under the adapter and the decode worker continues under it: same output as unified', async () => {
    expect(expected.a1, 'the unified suite ran first').to.not.equal('');
    expect((await api(server, 'POST', '/v1/admin/adapters', { model: BASE, id: 'a1', path: 'a1.gguf' }, ADMIN)).status).to.equal(201);
    const run = async (model: string) => {
      const r = await api(server, 'POST', '/v1/completions', { model, prompt: 'Hello there', max_tokens: 10, temperature: 0, ignore_eos: true, stop: ['\u0001a'] }, ADMIN);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return r.body.choices[0].text as string;
    };
    for (let i = 0; i < 2; i++) {
      expect(await run(`${BASE}:a1`)).to.equal(expected.a1);
      expect(await run(BASE)).to.equal(expected.base);
    }
  });
});
