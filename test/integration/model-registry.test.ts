/**
 * The model registry on a real server with real llama.cpp engines: a second generated model
 * (distinct weights) is loaded while the first serves, serves itself, becomes the default and back,
 * and is unloaded under concurrent streaming load with nothing dropped (every request completes or
 * gets the documented 503 model_unloading / 404 model_not_found). Errors (bad path, outside the
 * models directory, invalid GGUF, duplicate, over budget, unknown id, unloading the default), RBAC,
 * audit lines, /v1/models, /v1/models/{id}, /readyz and `inferctl admin models`.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../src/runtime/gguf/generate.js';
import { readGgufHeader } from '../../src/runtime/gguf/reader.js';
import { estimateModelMemory, hostCacheBytes } from '../../src/registry/memory-estimate.js';
import { modelMetadata } from '../../src/registry/model-metadata.js';
import { ModelStore } from '../../src/runtime/models/model-store.js';
import { runProcess } from '../helpers/process.js';
import { api, metric, startServer, tinyModel, type RunningServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const ADMIN = 'ifx-test-registry-admin-0123456789';
const USER = 'ifx-test-registry-user-0123456789';
const INFERCTL = new URL('../../dist/cli/inferctl.js', import.meta.url).pathname;

interface StreamOutcome {
  status: number;
  code?: string;
  tokens: number;
  finish?: string;
}

/** One streaming chat request read to its end: the status, the error code, or the finish reason. */
async function stream(server: RunningServer, model: string | undefined, maxTokens: number, onFirst?: () => void): Promise<StreamOutcome> {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${USER}` },
    body: JSON.stringify({ ...(model ? { model } : {}), messages: [{ role: 'user', content: 'Count with me.' }], max_tokens: maxTokens, ignore_eos: true, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code, tokens: 0 };
  const out: StreamOutcome = { status: 200, tokens: 0 };
  const decoder = new TextDecoder();
  let buf = '';
  let sawText = false;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, at).trim();
      buf = buf.slice(at + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const ev = JSON.parse(line.slice(6)) as { choices?: { delta?: { content?: string }; finish_reason?: string | null }[]; usage?: { completion_tokens: number }; error?: { code: string } };
      if (ev.error) return { ...out, code: ev.error.code };
      const c = ev.choices?.[0];
      if (c?.delta?.content && !sawText) {
        sawText = true;
        onFirst?.();
      }
      if (ev.usage) out.tokens = ev.usage.completion_tokens;
      if (c?.finish_reason) out.finish = c.finish_reason;
    }
  }
  return out;
}

async function greedy(server: RunningServer, model: string): Promise<string> {
  const r = await api(server, 'POST', '/v1/completions', { model, prompt: 'The', max_tokens: 8, temperature: 0, ignore_eos: true }, USER);
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  return r.body.choices[0].text as string;
}

describe('model registry: runtime load, serve, default, unload under load (real server)', function () {
  this.timeout(180_000);
  let dir: string;
  let server: RunningServer;
  let first: string;
  let firstId: string;
  const second = () => join(dir, 'second.gguf');
  /** The models directory a pull writes (server.models_dir), holding `second.gguf` under a pulled name. */
  const pulledDir = () => join(dir, 'pulled');
  const PULLED = 'acme/second-GGUF:Q8_0';
  const admin = (method: string, path: string, body?: unknown, key: string | null = ADMIN) => api(server, method, path, body, key);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-models-'));
    first = await tinyModel();
    firstId = 'tiny-seed0';
    await generateModel({ shape: 'tiny', seed: 1, outPath: second() });
    writeFileSync(join(dir, 'garbage.gguf'), Buffer.from('GGUF not really a model at all'));
    // Budget: room for two tiny models (the configured one and one more), not three.
    const info = await readGgufHeader(second());
    const one = estimateModelMemory(modelMetadata(info), info.fileSize, { workers: 1, contextSize: 2048, sequences: 4, hostCacheBytes: hostCacheBytes(1, 0, 512) }).totalBytes;
    // What `inferctl pull` leaves: the blob named by its digest and a manifest naming it.
    const store = new ModelStore(pulledDir());
    await store.ensureDirs();
    const bytes = readFileSync(second());
    const digest = createHash('sha256').update(bytes).digest('hex');
    copyFileSync(second(), store.blobPath(digest));
    await store.put({ name: PULLED, source: 'acme/second-GGUF:Q8_0', url: 'https://hub.example/acme/second-GGUF/resolve/main/second-Q8_0.gguf', quant: 'Q8_0', sha256: digest, size: bytes.length, pulled_at: new Date().toISOString(), architecture: 'llama' });
    server = await startServer({
      INFERFLUX_MODELS_DIR: pulledDir(),
      INFERFLUX_API_KEYS: `${ADMIN}:admin|generate|read,${USER}:generate|read`,
      INFERFLUX_DECODE_POOL_SIZE: '1',
      INFERFLUX_THREADS_PER_WORKER: '1',
      INFERFLUX_CORES: '2',
      INFERFLUX_SEQUENCES_PER_WORKER: '4',
      INFERFLUX_CONTEXT_SIZE: '2048',
      INFERFLUX_ADMIN_LOAD_DIR: dir,
      INFERFLUX_MEMORY_BUDGET_BYTES: String(Math.floor(one * 2.5)),
      INFERFLUX_AUDIT_FLUSH_INTERVAL_MS: '20',
    });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('admin routes need the admin scope (401 without a key, 403 for a generate|read key)', async () => {
    expect((await admin('GET', '/v1/admin/models', undefined, null)).status).to.equal(401);
    for (const [method, path, body] of [
      ['GET', '/v1/admin/models', undefined],
      ['POST', '/v1/admin/models', { id: 'x', path: second() }],
      ['DELETE', `/v1/admin/models/${firstId}`, undefined],
      ['POST', `/v1/admin/models/${firstId}/default`, undefined],
    ] as const) {
      const r = await admin(method, path, body, USER);
      expect(r.status, `${method} ${path}`).to.equal(403);
      expect(r.body.error.code).to.equal('forbidden');
    }
  });

  it('lists the configured model: ready, default, capabilities, GGUF metadata and its SHA-256 (hashed in the background)', async () => {
    const sha = createHash('sha256').update(readFileSync(first)).digest('hex');
    const m = await until('sha256', 10_000, async () => {
      const r = await admin('GET', '/v1/admin/models');
      expect(r.status).to.equal(200);
      const row = r.body.data.find((x: { id: string }) => x.id === firstId);
      return row.sha256 ? row : undefined;
    });
    expect(m).to.deep.include({ id: firstId, state: 'ready', ready: true, default: true, source: 'config', sha256: sha });
    expect(m.capabilities).to.deep.equal({ chat: true, completion: true, embeddings: false, tools: true, vision: false });
    expect(m.metadata).to.deep.include({ architecture: 'llama', quantization: 'F16', context_length: 2048, is_moe: false, n_experts: 0, n_active_experts: 0 });
  });

  it('refuses bad loads with clear errors: missing id, bad path, outside admin_load_dir, invalid GGUF, duplicate, over budget', async () => {
    const cases: [unknown, number, string, RegExp][] = [
      [{ path: second() }, 400, 'invalid_request', /id/],
      [{ id: 'x', path: join(dir, 'nope.gguf') }, 400, 'invalid_model_path', /does not exist/],
      [{ id: 'x', path: first }, 400, 'invalid_model_path', /outside the models directory/],
      [{ id: 'x', path: '../../etc/passwd' }, 400, 'invalid_model_path', /./],
      [{ id: 'x', path: join(dir, 'garbage.gguf') }, 422, 'invalid_model_file', /not a GGUF model llama.cpp can load safely/],
      [{ id: firstId, path: second() }, 409, 'model_exists', /already ready/],
      [{ id: 'bad id!', path: second() }, 400, 'invalid_request', /id must be/],
    ];
    for (const [body, status, code, message] of cases) {
      const r = await admin('POST', '/v1/admin/models', body);
      expect(r.status, JSON.stringify(body)).to.equal(status);
      expect(r.body.error.code, JSON.stringify(body)).to.equal(code);
      expect(r.body.error.message).to.match(message);
    }
    expect((await admin('DELETE', '/v1/admin/models/nope')).body.error.code).to.equal('model_not_found');
    expect((await admin('POST', '/v1/admin/models/nope/default')).status).to.equal(404);
    const d = await admin('DELETE', `/v1/admin/models/${firstId}`);
    expect([d.status, d.body.error.code]).to.deep.equal([409, 'model_is_default']);
    expect((await admin('GET', '/v1/admin/models')).body.data).to.have.length(1);
  });

  it('loads a second model while the first streams, serves both (distinct outputs), then refuses a third over the memory budget', async () => {
    const running = Array.from({ length: 3 }, () => stream(server, firstId, 48));
    const r = await admin('POST', '/v1/admin/models', { id: 'second', path: 'second.gguf' });
    expect(r.status, JSON.stringify(r.body)).to.equal(201);
    expect(r.body).to.deep.include({ id: 'second', state: 'ready', ready: true, default: false, source: 'admin', path: second() });
    for (const o of await Promise.all(running)) expect(o).to.deep.equal({ status: 200, tokens: 48, finish: 'length' });
    expect(await greedy(server, 'second')).to.not.equal(await greedy(server, firstId));

    const list = await api(server, 'GET', '/v1/models', undefined, USER);
    expect(list.body.data.map((m: { id: string; state: string; default: boolean }) => [m.id, m.state, m.default])).to.deep.equal([
      [firstId, 'ready', true],
      ['second', 'ready', false],
    ]);
    const one = await api(server, 'GET', '/v1/models/second', undefined, USER);
    expect(one.body).to.deep.include({ id: 'second', object: 'model', state: 'ready', capabilities: { chat: true, completion: true, embeddings: false, tools: true, vision: false } });
    // Backend provenance: the configured model's entry (default cpu), the admin-loaded one at runtime.
    expect(list.body.data[0].backend_exposure).to.deep.equal({ requested: 'cpu', exposed: 'cpu', provenance: 'config', skipped: [] });
    expect(one.body.backend_exposure).to.deep.equal({ requested: 'cpu', exposed: 'cpu', provenance: 'runtime', skipped: [] });
    expect(await metric(server.url, 'inferflux_backend_exposures_total{model="second",requested="cpu",exposed="cpu",provenance="runtime"}')).to.equal(1);
    expect(await metric(server.url, `inferflux_backend_exposures_total{model="${firstId}",requested="cpu",exposed="cpu",provenance="config"}`)).to.equal(1);
    expect(one.body.metadata).to.deep.include({ architecture: 'llama', quantization: 'F16', context_length: 2048, is_moe: false, n_experts: 0, n_active_experts: 0 });
    expect(one.body.metadata.parameter_count).to.be.greaterThan(100_000);
    expect(one.body.metadata.chat_template).to.include('<|im_start|>');
    const show = await api(server, 'POST', '/api/show', { model: 'second' }, USER);
    expect(show.body.metadata).to.deep.equal(one.body.metadata);
    expect(show.body.capabilities).to.deep.equal(['completion', 'tools']);
    const ready = await api(server, 'GET', '/readyz', undefined, null);
    expect(ready.status).to.equal(200);
    expect(ready.body.models).to.deep.equal([
      { id: firstId, ready: true, state: 'ready', default: true },
      { id: 'second', ready: true, state: 'ready', default: false },
    ]);

    copyFileSync(second(), join(dir, 'third.gguf'));
    const over = await admin('POST', '/v1/admin/models', { id: 'third', path: 'third.gguf' });
    expect(over.status).to.equal(507);
    expect(over.body.error.code).to.equal('insufficient_memory');
    expect(over.body.error.message).to.match(/needs an estimated .* MiB .* budget \(runtime.memory_budget_bytes\)/);
  });

  it('switches the default model both ways; requests naming no model follow it', async () => {
    const set = await admin('POST', '/v1/admin/models/second/default');
    expect([set.status, set.body.default]).to.deep.equal([200, true]);
    const r = await api(server, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }, USER);
    expect(r.body.model).to.equal('second');
    expect((await admin('DELETE', '/v1/admin/models/second')).body.error.code).to.equal('model_is_default');
    expect((await admin('POST', `/v1/admin/models/${firstId}/default`)).status).to.equal(200);
    const back = await api(server, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }, USER);
    expect(back.body.model).to.equal(firstId);
  });

  it('unloads under concurrent streaming load: running streams finish, new requests get 503 model_unloading then 404, none dropped', async () => {
    let started = 0;
    const inflight = Array.from({ length: 6 }, () => stream(server, 'second', 120, () => started++));
    await until('streams started', 30_000, async () => (started === 6 ? true : undefined));
    // A bounded client loop at both models across the unload: every answer is a documented one.
    let unloaded = false;
    const seen: StreamOutcome[] = [];
    const loop = (async () => {
      for (let i = 0; i < 200 && !unloaded; i++) seen.push(await stream(server, i % 2 ? 'second' : firstId, 4));
    })();
    const del = await admin('DELETE', '/v1/admin/models/second');
    unloaded = true;
    expect(del.status).to.equal(200);
    expect(del.body).to.deep.equal({ id: 'second', object: 'model', deleted: true });
    for (const o of await Promise.all(inflight)) expect(o).to.deep.equal({ status: 200, tokens: 120, finish: 'length' });
    await loop;
    for (const o of seen) {
      const ok = (o.status === 200 && o.tokens === 4 && o.finish === 'length') || (o.status === 503 && o.code === 'model_unloading') || (o.status === 404 && o.code === 'model_not_found');
      expect(ok, JSON.stringify(o)).to.equal(true);
    }
    expect(seen.some((o) => o.code === 'model_unloading'), 'a request met the draining model').to.equal(true);
    const after = await stream(server, 'second', 4);
    expect(after).to.deep.equal({ status: 404, code: 'model_not_found', tokens: 0 });
    expect((await api(server, 'GET', '/v1/models', undefined, USER)).body.data.map((m: { id: string }) => m.id)).to.deep.equal([firstId]);
    expect(await stream(server, firstId, 4)).to.deep.equal({ status: 200, tokens: 4, finish: 'length' });
  });

  it('audits every change and every refused change', async () => {
    const lines = await until('audit lines', 10_000, async () => {
      const text = readFileSync(join(server.dir, 'audit.log'), 'utf8');
      const events = text.trim().split('\n').map((l) => JSON.parse(l) as { event: string; decision?: string; detail?: string });
      const admins = events.filter((e) => e.event === 'admin' && e.decision?.startsWith('model.'));
      return admins.some((e) => e.decision === 'model.unload') ? admins : undefined;
    });
    const decisions = lines.map((e) => e.decision);
    for (const d of ['model.load', 'model.unload', 'model.default', 'model.load:error:model_exists', 'model.load:error:insufficient_memory', 'model.unload:error:model_is_default']) {
      expect(decisions, d).to.include(d);
    }
    expect(lines.find((e) => e.decision === 'model.load')!.detail).to.equal('id=second path=second.gguf');
  });

  it('inferctl admin models: --list, --load --id --default, --set-default, --unload, with exit codes', async () => {
    const env = { PATH: process.env.PATH ?? '', INFERCTL_URL: server.url, INFERCTL_API_KEY: ADMIN };
    const cli = (...args: string[]) => runProcess(process.execPath, [INFERCTL, 'admin', 'models', ...args], { env });
    let r = await cli('--load', 'second.gguf', '--id', 'again', '--default');
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.include({ id: 'again', state: 'ready', default: true });
    r = await cli('--list');
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout).data.map((m: { id: string; default: boolean }) => [m.id, m.default])).to.deep.equal([
      [firstId, false],
      ['again', true],
    ]);
    expect((await cli('--set-default', firstId)).code).to.equal(0);
    r = await cli('--unload', 'again');
    expect([r.code, JSON.parse(r.stdout).deleted]).to.deep.equal([0, true]);
    r = await cli('--unload', 'again');
    expect(r.code).to.equal(4);
    expect(r.stderr).to.include('model_not_found');
    expect((await cli('--load', 'second.gguf')).code).to.equal(2);
    expect((await cli('--unload', 'a', '--set-default', 'b')).code).to.equal(2);
    r = await runProcess(process.execPath, [INFERCTL, 'admin', 'models', '--list'], { env: { ...env, INFERCTL_API_KEY: USER } });
    expect(r.code).to.equal(3);
  });

  it('loads a pulled model by its name (API and inferctl); a name not pulled is 404 saying the inferctl pull to run', async () => {
    const missing = await admin('POST', '/v1/admin/models', { model: 'acme/nope-GGUF:Q4_K_M' });
    expect(missing.status).to.equal(404);
    expect(missing.body.error).to.deep.include({ code: 'model_not_found', param: 'model' });
    expect(missing.body.error.message).to.equal(`'acme/nope-GGUF:Q4_K_M' is not pulled into ${pulledDir()} (server.models_dir); pull it first with: inferctl pull acme/nope-GGUF:Q4_K_M`);
    for (const body of [{ model: PULLED, path: second(), id: 'x' }, {}, { id: 'x' }]) {
      const r = await admin('POST', '/v1/admin/models', body);
      expect([r.status, r.body.error.code], JSON.stringify(body)).to.deep.equal([400, 'invalid_request']);
    }
    expect((await admin('POST', '/v1/admin/models', { model: '../../etc/passwd' })).status).to.equal(400);

    // The pulled file is outside admin_load_dir's reach by path, and loads by name (the server's own store).
    const env = { PATH: process.env.PATH ?? '', INFERCTL_URL: server.url, INFERCTL_API_KEY: ADMIN };
    const cli = (...args: string[]) => runProcess(process.execPath, [INFERCTL, 'admin', 'models', ...args], { env });
    let r = await cli('--load', PULLED);
    expect(r.code, r.stderr).to.equal(0);
    const loaded = JSON.parse(r.stdout) as { id: string; pulled: string; state: string; path: string; default: boolean };
    expect(loaded).to.deep.include({ id: PULLED, pulled: PULLED, state: 'ready', default: false });
    expect(loaded.path).to.match(/\/blobs\/sha256-[0-9a-f]{64}\.gguf$/);
    // It serves under its name, from its own weights (seed 1), not the configured model's (seed 0).
    expect(await greedy(server, PULLED)).to.not.equal(await greedy(server, firstId));
    expect((await admin('GET', '/v1/models')).body.data.map((m: { id: string }) => m.id)).to.include(PULLED);
    r = await cli('--unload', PULLED);
    expect(r.code, r.stderr).to.equal(0);
    // Under another id, through the API.
    const other = await admin('POST', '/v1/admin/models', { model: PULLED, id: 'second-by-name' });
    expect([other.status, other.body.id, other.body.pulled]).to.deep.equal([201, 'second-by-name', PULLED]);
    expect((await admin('DELETE', '/v1/admin/models/second-by-name')).status).to.equal(200);
    r = await cli('--load', 'acme/nope-GGUF:Q4_K_M');
    expect(r.code).to.equal(4);
    expect(r.stderr).to.include('pull it first with: inferctl pull acme/nope-GGUF:Q4_K_M');
  });

  it('config models[] can name a pulled model (backend auto: the priority chain picks cpu here); one not pulled stops start-up naming the pull command', async () => {
    const byName = await startServer({ INFERFLUX_MODELS_DIR: pulledDir(), INFERFLUX_MODELS: `model=${PULLED},backend=auto`, INFERFLUX_MODEL_PATH: '' });
    try {
      const models = await api(byName, 'GET', '/v1/models', undefined, null);
      expect(models.body.data.map((m: { id: string }) => m.id)).to.deep.equal([PULLED]);
      // runtime.backend_priority defaults to [mps, cpu]; this Linux machine has no Metal.
      const metal = process.platform === 'darwin' && process.arch === 'arm64';
      expect(models.body.data[0].backend_exposure).to.deep.equal(
        metal ? { requested: 'auto', exposed: 'mps', provenance: 'priority', skipped: [] } : { requested: 'auto', exposed: 'cpu', provenance: 'priority', skipped: ['mps'] },
      );
      expect(await metric(byName.url, `inferflux_backend_exposures_total{model="${PULLED}",requested="auto",exposed="${metal ? 'mps' : 'cpu'}",provenance="priority"}`)).to.equal(1);
      const c = await api(byName, 'POST', '/v1/completions', { model: PULLED, prompt: 'The', max_tokens: 4, temperature: 0 }, null);
      expect(c.status, JSON.stringify(c.body)).to.equal(200);
    } finally {
      await byName.stop();
    }
    let failure = '';
    try {
      const s = await startServer({ INFERFLUX_MODELS_DIR: pulledDir(), INFERFLUX_MODELS: 'model=acme/nope-GGUF:Q4_K_M', INFERFLUX_MODEL_PATH: '' });
      await s.stop();
    } catch (err) {
      failure = String(err);
    }
    expect(failure).to.match(/server exited with 1 before listening/);
    expect(failure).to.include(`'acme/nope-GGUF:Q4_K_M' is not pulled into ${pulledDir()} (server.models_dir); pull it first with: inferctl pull acme/nope-GGUF:Q4_K_M`);
  });
});
