/**
 * Getting models end to end: `inferctl pull` / `models list --local` / `rm` as child processes,
 * and the `ollama` npm client's `pull()` (streamed NDJSON progress), `list()`, `copy()` and
 * `delete()` against the real server, all against a loopback hub and CDN serving the generated
 * tiny GGUF (test/helpers/fake-hub.ts).
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { runProcess } from '../helpers/process.js';
import { startFakeHub, sha256, tinyGguf, type FakeHub } from '../helpers/fake-hub.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const CLI = new URL('../../dist/cli/inferctl.js', import.meta.url).pathname;
const ADMIN = 'sk-pull-admin-0123456789';
const READ = 'sk-pull-read-0123456789';
const HF_TOKEN = 'hf_gated_0123456789abcdef';

async function rejection(p: Promise<unknown>): Promise<{ status_code?: number; error?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { status_code?: number; error?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('pull: inferctl and the Ollama routes against a loopback hub', function () {
  this.timeout(120_000);
  let hub: FakeHub;
  let gguf: Buffer;
  let server: RunningServer;
  let tmp: string;

  before(async () => {
    gguf = await tinyGguf();
    const corrupt = Buffer.from(gguf);
    corrupt[100] ^= 0xff;
    hub = await startFakeHub({
      'acme/tiny-GGUF': [
        { path: 'tiny-Q8_0.gguf', bytes: gguf },
        { path: 'tiny-Q4_K_M.gguf', bytes: gguf, dropOnce: true },
      ],
      // Listed with the digest of other bytes (not of a stored blob, which would need no download).
      'acme/bad-GGUF': [{ path: 'bad-Q4_K_M.gguf', bytes: corrupt, listedSha256: sha256(Buffer.from('the real file')) }],
      'acme/gated-GGUF': [{ path: 'gated-Q8_0.gguf', bytes: gguf }],
    }, { gated: ['acme/gated-GGUF'], token: HF_TOKEN });
    tmp = mkdtempSync(join(tmpdir(), 'ifx-pull-it-'));
    server = await startServer({ INFERFLUX_API_KEYS: `${ADMIN}:admin|read,${READ}:read`, INFERFLUX_HUB_URL: hub.url, INFERFLUX_PULL_ALLOWED_HOSTS: '127.0.0.1' });
  });
  after(async () => {
    await server?.stop();
    await hub?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const cli = (args: string[], env: Record<string, string> = { INFERFLUX_PULL_ALLOWED_HOSTS: '127.0.0.1' }) =>
    runProcess(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: tmp, INFERFLUX_HUB_URL: hub.url, ...env }, cwd: tmp });

  it('inferctl pull resumes, verifies and stores with progress lines; list --local and rm manage the directory; failures exit with their code and a next step', async () => {
    const dir = join(tmp, 'models');
    const pulled = await cli(['pull', 'acme/tiny-GGUF', '--quant', 'q4_k_m', '--models-dir', dir]);
    expect(pulled.code, pulled.stderr).to.equal(0);
    expect(pulled.stderr).to.contain('pulling acme/tiny-GGUF: reading the file listing\n');
    const size = `${(gguf.length / 1024).toFixed(1)} KiB`; // the tiny model is < 1 MiB
    expect(pulled.stderr).to.contain(`file tiny-Q4_K_M.gguf (${size}), sha256 ${sha256(gguf)}\n`);
    expect(pulled.stderr).to.match(/\nresuming at [\d.]+ (KiB|MiB) \(attempt 2\)\n/);
    // Plain lines (no terminal): size, speed and ETA.
    expect(pulled.stderr).to.match(/\n[\d.]+ KiB \/ [\d.]+ KiB {2}[\d.]+ (B|KiB|MiB|GiB)\/s {2}ETA (\d+s|\?) \(100%\)\n/);
    expect(pulled.stderr).to.contain('verifying sha256 digest\nchecking the GGUF\n');
    const path = join(dir, 'blobs', `sha256-${sha256(gguf)}.gguf`);
    expect(pulled.stdout).to.equal(`pulled acme/tiny-GGUF:q4_k_m (${size}, sha256 ${sha256(gguf)})\n  ${path}\n  serve it with: inferctl serve --model ${path}\n`);

    const listed = await cli(['models', 'list', '--local', '--models-dir', dir, '--json']);
    expect(listed.code).to.equal(0);
    const body = JSON.parse(listed.stdout) as { models_dir: string; models: { name: string; sha256: string; size: number; source: string; path: string }[] };
    expect(body.models.map(({ name, sha256: h, size, source, path: p }) => ({ name, h, size, source, p }))).to.deep.equal([
      { name: 'acme/tiny-GGUF:q4_k_m', h: sha256(gguf), size: gguf.length, source: 'acme/tiny-GGUF', p: path },
    ]);

    const missing = await cli(['pull', 'acme/tiny-GGUF:Q2_K', '--models-dir', dir]);
    expect(missing.code).to.equal(4);
    expect(missing.stderr).to.contain('inferctl: acme/tiny-GGUF has no GGUF for quant Q2_K; available: Q4_K_M, Q8_0 (model_not_found)\n  next: ');
    const bad = await cli(['pull', 'acme/bad-GGUF', '--models-dir', dir]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}; the file was removed \(digest_mismatch\)\n {2}next: /);
    // Loopback is refused unless allow-listed.
    const refused = await cli(['pull', 'acme/tiny-GGUF:Q8_0', '--models-dir', dir], {});
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.contain('(download_refused)\n  next: to allow a private or loopback host, set INFERFLUX_PULL_ALLOWED_HOSTS');
    const usage = await cli(['pull', '../../etc/passwd', '--models-dir', dir]);
    expect(usage.code).to.equal(2);
    expect(readdirSync(dir).sort()).to.deep.equal(['blobs', 'manifests']);
    expect(readdirSync(join(dir, 'blobs'))).to.deep.equal([`sha256-${sha256(gguf)}.gguf`]);

    // On a terminal (script(1) gives the child a pseudo-terminal): a progress bar instead of lines.
    const tty = await runProcess('script', ['-qec', `${process.execPath} ${CLI} pull acme/tiny-GGUF:Q8_0 --models-dir ${join(tmp, 'tty-models')}`, '/dev/null'], {
      env: { PATH: process.env.PATH ?? '', HOME: tmp, TERM: 'xterm', INFERFLUX_HUB_URL: hub.url, INFERFLUX_PULL_ALLOWED_HOSTS: '127.0.0.1' },
      cwd: tmp,
    });
    expect(tty.code, tty.stdout).to.equal(0);
    expect(tty.stdout).to.match(/={30} 100% \| [\d.]+ KiB \/ [\d.]+ KiB {2}[\d.]+ (B|KiB|MiB|GiB)\/s {2}ETA \d+s/);
    expect(tty.stdout).to.contain('\x1b[?25l'); // the bar hides the cursor while it draws
    expect(tty.stdout).to.not.match(/\(100%\)\r?\n/); // and the plain lines are not printed

    const rm = await cli(['rm', 'acme/tiny-GGUF:q4_k_m', '--models-dir', dir]);
    expect([rm.code, rm.stdout]).to.deep.equal([0, 'removed acme/tiny-GGUF:q4_k_m\n']);
    expect(readdirSync(join(dir, 'blobs'))).to.deep.equal([]);
    const again = await cli(['rm', 'acme/tiny-GGUF:q4_k_m', '--models-dir', dir]);
    expect(again.code).to.equal(4);
    expect(again.stderr).to.contain("model 'acme/tiny-GGUF:q4_k_m' is not in the local models directory");
  });

  it("the ollama client's pull() streams Ollama's progress lines; list(), copy() and delete() manage pulled models; admin scope only", async () => {
    const admin = new Ollama({ host: server.url, headers: { authorization: `Bearer ${ADMIN}` } });
    const lines: { status: string; digest?: string; total?: number; completed?: number }[] = [];
    for await (const p of await admin.pull({ model: 'acme/tiny-GGUF:Q8_0', stream: true })) lines.push(p);
    const digest = `sha256:${sha256(gguf)}`;
    expect(lines[0]).to.deep.equal({ status: 'pulling manifest' });
    const downloading = lines.filter((l) => l.status.startsWith('downloading'));
    expect(downloading.length).to.be.greaterThan(0);
    for (const l of downloading) expect(l).to.include({ status: `downloading ${digest}`, digest, total: gguf.length });
    expect(downloading[downloading.length - 1]!.completed).to.equal(gguf.length);
    expect(lines.slice(-3)).to.deep.equal([{ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, { status: 'success' }]);

    // stream: false answers the final object only.
    expect(await admin.pull({ model: 'hf://acme/tiny-GGUF/tiny-Q4_K_M.gguf', stream: false })).to.deep.equal({ status: 'success' });
    await admin.copy({ source: 'acme/tiny-GGUF:Q8_0', destination: 'mine:v1' });
    const names = (await admin.list()).models.map((m) => m.name);
    expect(names).to.include.members(['acme/tiny-GGUF:Q8_0', 'acme/tiny-GGUF:tiny-Q4_K_M', 'mine:v1']);
    const mine = (await admin.list()).models.find((m) => m.name === 'mine:v1')!;
    expect(mine).to.deep.include({ size: gguf.length, digest: sha256(gguf) });
    expect(mine.details).to.deep.include({ format: 'gguf', family: 'llama', quantization_level: 'Q8_0' });
    await admin.delete({ model: 'mine:v1' });
    expect((await admin.list()).models.map((m) => m.name)).to.not.include('mine:v1');
    const gone = await rejection(admin.delete({ model: 'mine:v1' }));
    expect([gone.status_code, gone.error]).to.deep.equal([404, "model 'mine:v1' is not in the local models directory"]);

    // Errors: before the stream opens, a status in Ollama's shape; after it, an error line.
    const missing = await rejection(admin.pull({ model: 'acme/tiny-GGUF:Q2_K' }));
    expect([missing.status_code, missing.error]).to.deep.equal([404, 'acme/tiny-GGUF has no GGUF for quant Q2_K; available: Q4_K_M, Q8_0']);
    const res = await fetch(`${server.url}/api/pull`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'acme/bad-GGUF' }) });
    const ndjson = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(ndjson[0]).to.deep.equal({ status: 'pulling manifest' });
    expect(ndjson[ndjson.length - 2]).to.deep.equal({ status: 'verifying sha256 digest' });
    expect(String(ndjson[ndjson.length - 1]!.error)).to.match(/^bad-Q4_K_M\.gguf: sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}; the file was removed$/);

    const reader = new Ollama({ host: server.url, headers: { authorization: `Bearer ${READ}` } });
    for (const p of [reader.pull({ model: 'acme/tiny-GGUF:Q8_0', stream: false }), reader.copy({ source: 'a', destination: 'b' }), reader.delete({ model: 'acme/tiny-GGUF:Q8_0' })]) {
      expect((await rejection(p)).status_code).to.equal(403);
    }
    expect((await rejection(admin.push({ model: 'acme/tiny-GGUF:Q8_0' }))).status_code).to.equal(501);
  });

  it('a gated repository: HF_TOKEN reaches the hub and never the CDN; without it inferctl exits 3 and /api/pull answers 403 hub_access_denied', async () => {
    const allow = { INFERFLUX_PULL_ALLOWED_HOSTS: '127.0.0.1' };
    hub.requests.length = 0;
    const denied = await cli(['pull', 'acme/gated-GGUF:Q8_0', '--models-dir', join(tmp, 'gated-anon')]);
    expect(denied.code).to.equal(3);
    expect(denied.stderr).to.contain(`inferctl: ${hub.url} refused the file listing of acme/gated-GGUF (HTTP 401): it is gated or private (or does not exist); set HF_TOKEN to a hub token with access to it (hub_access_denied)\n  next: set HF_TOKEN to a hub access token`);
    const wrong = await cli(['pull', 'acme/gated-GGUF:Q8_0', '--models-dir', join(tmp, 'gated-wrong')], { ...allow, HF_TOKEN: 'hf_someone_else' });
    expect(wrong.code).to.equal(3);
    expect(wrong.stderr).to.contain('(HTTP 403): the token in HF_TOKEN has no access to it');

    hub.requests.length = 0;
    const dir = join(tmp, 'gated');
    const ok = await cli(['pull', 'acme/gated-GGUF:Q8_0', '--models-dir', dir], { ...allow, HF_TOKEN });
    expect(ok.code, ok.stderr).to.equal(0);
    expect(readdirSync(join(dir, 'blobs'))).to.deep.equal([`sha256-${sha256(gguf)}.gguf`]);
    const seen = hub.requests.map((r) => `${r.server} ${r.url.replace(/\?.*$/, '')} ${r.authorization ?? '-'}`);
    expect(seen).to.deep.equal([
      `hub /api/models/acme/gated-GGUF/tree/main Bearer ${HF_TOKEN}`,
      `hub /acme/gated-GGUF/resolve/main/gated-Q8_0.gguf Bearer ${HF_TOKEN}`,
      `cdn /blob/${encodeURIComponent('acme/gated-GGUF')}/gated-Q8_0.gguf -`,
    ]);
    // The token never shows in what the CLI printed.
    expect(ok.stdout + ok.stderr).to.not.contain(HF_TOKEN);

    // The server has no HF_TOKEN: Ollama's /api/pull answers 403 before any progress line, streamed or not.
    for (const stream of [true, false]) {
      const res = await fetch(`${server.url}/api/pull`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'acme/gated-GGUF:Q8_0', stream }) });
      expect(res.status, `stream ${stream}`).to.equal(403);
      expect(await res.json()).to.deep.equal({ error: `${hub.url} refused the file listing of acme/gated-GGUF (HTTP 401): it is gated or private (or does not exist); set HF_TOKEN to a hub token with access to it` });
    }
  });
});
