/**
 * `inferctl serve` and the server's own argv: `node dist/main.js --help|--version` print and exit
 * without starting, an unknown flag is a usage error (exit 2), and `inferctl serve --port ...
 * --model ...` runs the real server in the foreground with those settings until SIGTERM reaches
 * inferctl, which passes it on and exits with the server's code.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyModel } from '../helpers/server.js';
import { freePort, runProcess, type ProcessResult } from '../helpers/process.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
const CLI = new URL('../../dist/cli/inferctl.js', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env } });
}

describe('inferctl serve and the server argv', function () {
  this.timeout(120_000);

  it('node dist/main.js --help / --version print and exit; an unknown flag is exit 2', async () => {
    const help = await run([MAIN, '--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^usage: node dist\/main\.js \[flags\]/);
    expect(help.stdout).to.contain('--port N').and.contain('INFERFLUX_PORT').and.contain('--api-keys SPEC');
    expect(help.stderr).to.not.contain('listening');
    const version = await run([MAIN, '--version']);
    expect(version).to.include({ code: 0 });
    expect(version.stdout).to.match(/^inferflux \d+\.\d+\.\d+\n$/);
    const bad = await run([MAIN, '--prot', '9000']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain("Unknown option '--prot'").and.contain('usage:');
  });

  it('inferctl serve runs the server in the foreground with its flags; SIGTERM stops both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ifx-serve-'));
    const port = await freePort();
    const model = await tinyModel();
    const child = spawn(process.execPath, [CLI, '--port', String(port), 'serve', '--model', model, '--audit-log', join(dir, 'audit.log'), '--api-keys', 'sk-serve-test-0001'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!log.includes('listening on') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      expect(log).to.contain(`listening on http://127.0.0.1:${port} (models: tiny-seed0)`);
      // --api-keys turned auth on: no key is 401, the key works.
      expect((await fetch(`http://127.0.0.1:${port}/v1/models`)).status).to.equal(401);
      const ok = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: 'Bearer sk-serve-test-0001' } });
      expect(((await ok.json()) as { data: { id: string }[] }).data.map((m) => m.id)).to.deep.equal(['tiny-seed0']);
      child.kill('SIGTERM'); // to inferctl only: it must pass the signal on
      expect(await exited).to.equal(0);
      expect(log).to.contain('SIGTERM: shutting down').and.contain('stopped');
      const after = await fetch(`http://127.0.0.1:${port}/healthz`).then(() => 'answered', () => 'refused');
      expect(after).to.equal('refused');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
