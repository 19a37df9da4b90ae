/**
 * `inferctl` as a user runs it: the built CLI (`node dist/cli/inferctl.js`) in its own process
 * against the real server (tiny model), with exit codes, stdout and stderr checked. Covers status,
 * completion and chat (one shot, streamed, interactive with its transcript), the admin commands
 * (each change visible to the next request), usage and server errors, and `audit verify` on the
 * server's own log, intact and tampered with.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';
import { freePort, runProcess } from '../helpers/process.js';

const CLI = new URL('../../dist/cli/inferctl.js', import.meta.url).pathname;
const ADMIN_KEY = 'sk-it-inferctl-admin-0001';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args`, optional stdin; the server URL and admin key come from the env, as documented. */
function inferctl(server: RunningServer | null, args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env = { PATH: process.env.PATH ?? '', ...(server ? { INFERCTL_URL: server.url, INFERCTL_API_KEY: ADMIN_KEY } : {}), ...opts.env };
  return runProcess(process.execPath, [CLI, ...args], { env, stdin: opts.stdin ?? '' });
}

function json(r: Run): Record<string, any> {
  expect(r.code, r.stderr).to.equal(0);
  return JSON.parse(r.stdout) as Record<string, any>;
}

function completionLines(server: RunningServer): { promptTokens: number; route: string }[] {
  return readFileSync(join(server.dir, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; promptTokens: number; route: string })
    .filter((e) => e.event === 'completion');
}

describe('inferctl (the CLI against a real server)', function () {
  this.timeout(120_000);
  let server: RunningServer;

  before(async () => {
    server = await startServer({ INFERCTL_API_KEY: ADMIN_KEY });
  });
  after(async () => {
    await server?.stop();
  });

  it('status (pools, queue depth) and models list|show, as text and --json', async () => {
    const s = await inferctl(server, ['status']);
    expect(s.code, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/^health\s+ok$/m);
    expect(s.stdout).to.match(/^ready\s+yes$/m);
    expect(s.stdout).to.match(/^model\s+tiny-seed0$/m);
    expect(s.stdout).to.match(/^pool\s+decode: (\d+)\/\1 worker\(s\) ready, 0 restart\(s\)$/m);
    expect(s.stdout).to.match(/^queue\s+tiny-seed0: 0 waiting, 0 running$/m);
    const sj = json(await inferctl(server, ['status', '--json']));
    expect(sj).to.include({ ready: true, health: 'ok', server: server.url });
    expect(sj.pools.map((p: { name: string }) => p.name)).to.include.members(['decode', 'scheduler']);
    expect(sj.queue).to.deep.equal([{ model: 'tiny-seed0', waiting: 0, running: 0 }]);
    const m = await inferctl(server, ['models']);
    expect(m).to.include({ code: 0, stdout: 'tiny-seed0\n' });
    expect(await inferctl(server, ['models', 'list'])).to.include({ code: 0, stdout: 'tiny-seed0\n' });
    expect(json(await inferctl(server, ['--json', 'models', 'list'])).map((x: { id: string }) => x.id)).to.deep.equal(['tiny-seed0']);
    const show = await inferctl(server, ['models', 'show', 'tiny-seed0']);
    expect(show.code, show.stderr).to.equal(0);
    expect(show.stdout).to.match(/^state\s+loaded$/m);
    expect(show.stdout).to.match(/^context\s+\d+$/m);
    expect(json(await inferctl(server, ['models', 'show', 'tiny-seed0', '--json']))).to.include({ id: 'tiny-seed0', arch: 'llama', state: 'loaded' });
    const missing = await inferctl(server, ['models', 'show', 'no-such-model']);
    expect(missing).to.include({ code: 4, stdout: '' });
    expect(missing.stderr).to.contain('model_not_found, HTTP 404').and.contain('next: list the served models with: inferctl models list');
    // --host/--port instead of the URL.
    const port = await inferctl(null, ['--host', '127.0.0.1', '--port', String(server.port), '--api-key', ADMIN_KEY, 'models']);
    expect(port).to.include({ code: 0, stdout: 'tiny-seed0\n' });
  });

  it('completion: plain, streamed and JSON give the same greedy text', async () => {
    const args = ['completion', '--prompt', 'Once upon a time', '--max-tokens', '12', '--temperature', '0'];
    const plain = await inferctl(server, args);
    expect(plain.code, plain.stderr).to.equal(0);
    expect(plain.stdout.trim()).to.not.equal('');
    const streamed = await inferctl(server, [...args, '--stream']);
    expect(streamed.code, streamed.stderr).to.equal(0);
    expect(streamed.stdout).to.equal(plain.stdout);
    const body = json(await inferctl(server, [...args, '--json']));
    expect(body.object).to.equal('text_completion');
    expect(`${body.choices[0].text}\n`).to.equal(plain.stdout);
    expect(body.usage.completion_tokens).to.be.within(1, 12);
  });

  it('chat: messages with roles, streamed; interactive keeps the transcript', async () => {
    const one = await inferctl(server, ['chat', '--system', 'Be brief', '--message', 'user:Hello', '--max-tokens', '6', '--stream']);
    expect(one.code, one.stderr).to.equal(0);
    expect(one.stdout.endsWith('\n')).to.equal(true);
    const before = completionLines(server).length;
    const session = await inferctl(server, ['chat', '--interactive', '--max-tokens', '6', '--temperature', '0'], { stdin: 'first question\n\nsecond question\n/exit\nnever sent\n' });
    expect(session.code, session.stderr).to.equal(0);
    expect(session.stdout.split('\n').filter((l) => l !== '')).to.have.length.within(1, 2); // two answers (one may be empty text)
    // The audit log shows two chat requests, the second carrying the first exchange too.
    let lines = completionLines(server).slice(before);
    for (let i = 0; i < 40 && lines.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 50)); // the audit writer batches
      lines = completionLines(server).slice(before);
    }
    expect(lines.map((l) => l.route)).to.deep.equal(['/v1/chat/completions', '/v1/chat/completions']);
    expect(lines[1]!.promptTokens).to.be.above(lines[0]!.promptTokens + 4);
  });

  it('admin guardrails: a blocklist set from the CLI denies the next request, and is cleared again', async () => {
    const set = json(await inferctl(server, ['admin', 'guardrails', '--set', 'launch codes, classified', '--pii', 'redact', '--pii-output', 'off']));
    expect(set.blocklist).to.deep.equal(['launch codes', 'classified']);
    expect(set.pii).to.include({ action: 'redact', output: false });
    const denied = await inferctl(server, ['completion', '--prompt', 'share the launch codes', '--max-tokens', '2']);
    expect(denied.code).to.equal(1);
    expect(denied.stderr).to.contain('guardrail_denied, HTTP 400');
    expect(json(await inferctl(server, ['admin', 'guardrails', '--list'])).blocklist).to.deep.equal(['launch codes', 'classified']);
    const cleared = json(await inferctl(server, ['admin', 'guardrails', '--set', '', '--pii', 'off']));
    expect(cleared.blocklist).to.deep.equal([]);
    expect((await inferctl(server, ['completion', '--prompt', 'share the launch codes', '--max-tokens', '2'])).code).to.equal(0);
  });

  it('admin rate-limit: shows and changes the live limits', async () => {
    const set = json(await inferctl(server, ['admin', 'rate-limit', '--set', '500', '--tenant-tokens-per-minute', '90000']));
    expect(set).to.include({ requests_per_minute: 500, tenant_tokens_per_minute: 90000 });
    expect(json(await inferctl(server, ['admin', 'rate-limit'])).requests_per_minute).to.equal(500);
    json(await inferctl(server, ['admin', 'rate-limit', '--set', '0', '--tenant-tokens-per-minute', '0']));
  });

  it('admin api-keys: a key created from the CLI works once, and not after it is removed', async () => {
    const created = await inferctl(server, ['admin', 'api-keys', '--add', 'ci-bot', '--scopes', 'generate,read', '--tenant', 'team-x']);
    const key = json(created);
    expect(key).to.include({ label: 'ci-bot', tenant: 'team-x' });
    expect(key.key).to.match(/^ifx-/);
    expect(created.stderr).to.contain('shown once');
    const listed = json(await inferctl(server, ['admin', 'api-keys', '--list']));
    expect(JSON.stringify(listed)).to.not.contain(key.key);
    expect(listed.data.map((k: { id: string }) => k.id)).to.include(key.id);
    const asBot = ['--api-key', key.key, 'completion', '--prompt', 'hi', '--max-tokens', '2'];
    expect((await inferctl(server, asBot)).code).to.equal(0);
    // Generate and read only: admin is refused with the server's reason.
    const forbidden = await inferctl(server, ['--api-key', key.key, 'admin', 'rate-limit']);
    expect(forbidden.code).to.equal(3);
    expect(forbidden.stderr).to.contain('forbidden, HTTP 403');
    json(await inferctl(server, ['admin', 'api-keys', '--remove', key.id]));
    const revoked = await inferctl(server, asBot);
    expect(revoked.code).to.equal(3);
    expect(revoked.stderr).to.contain('unauthorized, HTTP 401');
    // A key of the operator's choosing: registered, not shown back, and it works.
    const chosen = 'sk-cli-chosen-key-0001';
    const registered = await inferctl(server, ['admin', 'api-keys', '--add', 'legacy', '--scopes', 'generate,read', '--key', chosen]);
    expect(JSON.stringify(json(registered))).to.not.contain(chosen);
    expect(registered.stderr).to.contain('registered the given key as key:');
    expect((await inferctl(server, ['--api-key', chosen, 'completion', '--prompt', 'hi', '--max-tokens', '2'])).code).to.equal(0);
    const misplaced = await inferctl(server, ['admin', 'api-keys', '--key', chosen]);
    expect(misplaced.code).to.equal(2);
    expect(misplaced.stderr).to.contain('--key and --key-sha256 go with --add');
  });

  it('admin cache: warm a prefix, see it counted, flush it', async () => {
    const prompt = 'A shared system prompt that many requests start with, warmed ahead of time.';
    const warm = json(await inferctl(server, ['admin', 'cache', '--warm', prompt]));
    expect(warm).to.include({ object: 'cache.warm', model: 'tiny-seed0' });
    expect(warm.prompt_tokens).to.be.above(5);
    // The same prefix again is served from the cache the warm-up left.
    const again = json(await inferctl(server, ['admin', 'cache', '--warm', prompt]));
    expect(again.cached_tokens).to.be.above(0);
    const status = json(await inferctl(server, ['admin', 'cache', '--list']));
    expect(status).to.include({ object: 'cache.status' });
    expect(status.models).to.deep.equal(['tiny-seed0']);
    expect(status.workers).to.be.an('array').that.is.not.empty;
    expect(json(await inferctl(server, ['admin', 'cache', '--flush']))).to.be.an('object');
    expect((await inferctl(server, ['admin', 'cache', '--flush', '--warm', 'x'])).code).to.equal(2);
  });

  it("admin debug: the token traces of the warm-ups above, one request's whole trace, 4 for an unknown id", async () => {
    const all = json(await inferctl(server, ['admin', 'debug']));
    expect(all.object).to.equal('debug');
    // The newest: the second warm-up of the test above (the cache tests run no other request).
    const warm = (all.token_traces as { request_id: string; prompt_tokens: number; cached_tokens: number }[])[0];
    expect(warm, 'the cache warm-up ran as a request').to.exist;
    expect(warm!.cached_tokens).to.be.above(0);
    const one = json(await inferctl(server, ['admin', 'debug', '--trace', warm!.request_id]));
    expect(one).to.include({ object: 'debug.token_trace', request_id: warm!.request_id, prompt_tokens: warm!.prompt_tokens });
    expect(one.choices).to.be.an('array').with.length(1);
    const missing = await inferctl(server, ['admin', 'debug', '--trace', 'no such id/..']);
    expect(missing.code).to.equal(4);
  });

  it('admin fairness: shows and changes the live scheduler settings', async () => {
    const before = json(await inferctl(server, ['admin', 'fairness']));
    expect(before.object).to.equal('fairness');
    const set = json(await inferctl(server, ['admin', 'fairness', '--preemption', 'on', '--max-timeslice-tokens', '64']));
    expect(set).to.include({ enable_preemption: true, max_timeslice_tokens: 64 });
    json(await inferctl(server, ['admin', 'fairness', '--preemption', before.enable_preemption ? 'on' : 'off', '--max-timeslice-tokens', String(before.max_timeslice_tokens)]));
  });

  it('exit codes: 2 usage, 3 auth, 4 not found, 5 unreachable, each with the next step', async () => {
    for (const args of [
      ['admin', 'rate-limit', '--set', 'many'],
      ['nonsense'],
      ['completion'],
      ['admin', 'guardrails', '--pii', 'maybe'],
      ['chat', '--max-tokens', '2'],
      // --json is one response object: with --stream it is refused, as the help says.
      ['chat', '--message', 'hi', '--json', '--stream'],
      ['--json', 'completion', '-p', 'hi', '--stream'],
      ['chat', '-i', '--json'],
    ]) {
      const r = await inferctl(server, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr).to.not.equal('');
    }
    expect((await inferctl(server, ['chat', '--help'])).stdout).to.contain('--stream').and.contain('not with --json');
    const rate = await inferctl(server, ['--timeout', '30', 'admin', 'rate-limit', '--set', 'many']);
    expect(rate.stderr).to.equal('inferctl: --set must be an integer >= 0, got many\n  next: see inferctl admin rate-limit --help for the flags and examples\n');
    const wait = await inferctl(server, ['quickstart', '--wait', 'soon']);
    expect(wait.code).to.equal(2);
    expect(wait.stderr).to.contain('--wait must be a number >= 1, got soon');
    const badKey = await inferctl(server, ['--api-key', 'sk-not-a-key-00000000', 'models']);
    expect(badKey).to.include({ code: 3, stdout: '' });
    expect(badKey.stderr).to.match(/^inferctl: Invalid credentials\. \(unauthorized, HTTP 401\)\n {2}next: .*INFERCTL_API_KEY/);
    // No key at all: no Authorization header (not "Bearer none"), so the server says the key is missing.
    for (const args of [['models'], ['chat', '--message', 'hi', '--max-tokens', '1']]) {
      const noKey = await inferctl(null, ['--url', server.url, ...args]);
      expect(noKey.code, noKey.stderr).to.equal(3);
      expect(noKey.stderr).to.contain('Missing credentials').and.contain('next: the server wants a key: set INFERCTL_API_KEY=<key>');
    }
    const unknownKey = await inferctl(server, ['admin', 'api-keys', '--remove', 'key:000000000000']);
    expect(unknownKey.code).to.equal(4);
    expect(unknownKey.stderr).to.contain('next: list the key ids with: inferctl admin api-keys --list');
    const port = await freePort();
    const nowhere = await inferctl(null, ['--url', `http://127.0.0.1:${port}`, 'status']);
    expect(nowhere.code).to.equal(5);
    expect(nowhere.stderr).to.equal(
      `inferctl: cannot reach http://127.0.0.1:${port}: ECONNREFUSED\n  next: start a server with: inferctl serve --port ${port}   (or: inferctl quickstart, for the demo model and a chat)\n`,
    );
  });

  it('--version and --help with examples on every command', async () => {
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    expect(await inferctl(null, ['--version'])).to.include({ code: 0, stdout: `${version}\n` });
    // As after `npm link`: `inferctl` on PATH is a symlink to the built entry (its shebang runs it).
    const bin = mkdtempSync(join(tmpdir(), 'ifx-bin-'));
    try {
      symlinkSync(CLI, join(bin, 'inferctl'));
      chmodSync(CLI, 0o755); // npm link marks the bin executable; tsc writes it 0644
      const linked = spawnSync('inferctl', ['--version'], { cwd: bin, env: { PATH: `${bin}:${process.env.PATH ?? ''}` }, encoding: 'utf8' });
      expect(linked).to.include({ status: 0, stdout: `${version}\n` });
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
    const commands = [[], ['serve'], ['quickstart'], ['status'], ['models'], ['completion'], ['chat'], ['admin'], ['admin', 'guardrails'], ['admin', 'rate-limit'], ['admin', 'api-keys'], ['admin', 'cache'], ['admin', 'fairness'], ['admin', 'models'], ['admin', 'adapters'], ['audit'], ['audit', 'verify']];
    for (const cmd of commands) {
      const r = await inferctl(null, [...cmd, '--help']);
      expect(r.code, cmd.join(' ')).to.equal(0);
      expect(r.stdout, cmd.join(' ')).to.match(/\nExamples:\n {2}\$ inferctl /);
    }
  });

  it('audit verify: the stopped server log verifies; an altered line is named, exit 1', async () => {
    await server.stop({ keepDir: true });
    const log = join(server.dir, 'audit.log');
    const ok = await inferctl(null, ['audit', 'verify', server.dir]);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^OK \d+ line\(s\) in audit\.log, chain from genesis; checkpoint seq \d+ matches \(unsigned\)\n$/);
    const okJson = json(await inferctl(null, ['audit', 'verify', server.dir, '--json']));
    expect(okJson).to.have.length(1);
    expect(okJson[0]).to.include({ ok: true, start: 'genesis', problem: null });
    const lines = readFileSync(log, 'utf8').split('\n');
    lines[3] = lines[3]!.replace('"status":200', '"status":201');
    writeFileSync(log, lines.join('\n'));
    const bad = await inferctl(null, ['audit', 'verify', log]);
    expect(bad.code).to.equal(1);
    expect(bad.stdout).to.match(new RegExp(`^FAIL ${log.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: `));
    const badJson = await inferctl(null, ['--json', 'audit', 'verify', log]);
    expect(badJson.code).to.equal(1);
    expect(JSON.parse(badJson.stdout)[0]).to.deep.include({ ok: false }).and.nested.include({ 'problem.line': 4, 'problem.file': log });
  });
});
