/**
 * The README's new-user path, run word for word from the block between the `new-user-path`
 * markers: `npx inferctl quickstart` (piped a message: a streamed chat) starts a server with the
 * demo model, then the README's `hello.mjs` OpenAI client streams from it, then a second
 * quickstart reuses the running server. `git clone` and `npm ci` are checked to be the documented
 * first steps but not run (this suite runs inside an installed clone; a nested npm ci would
 * rebuild node_modules under the running tests). The README's default port 8080 is swapped for a
 * free one through `INFERCTL_URL`, and the snippet's URL to match.
 * The README's `hello-ollama.mjs` then streams the same way through the `ollama` client.
 */
import { expect } from 'chai';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, runProcess, type ProcessResult } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function readmePath(): { bash: string[]; js: string[] } {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const section = /<!-- new-user-path[^>]*-->([\s\S]*?)<!-- \/new-user-path -->/.exec(readme)?.[1];
  if (!section) throw new Error('README has no new-user-path section');
  const bash = /```bash\n([\s\S]*?)```/.exec(section)![1]!.trim().split('\n');
  const js = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return { bash, js };
}

function sh(command: string, env: Record<string, string>, stdin = ''): Promise<ProcessResult> {
  // A new user's shell has no INFERFLUX_LOG_LEVEL; mocha's quiet-logs helper sets it to silent.
  const { INFERFLUX_LOG_LEVEL: _quiet, ...userEnv } = process.env;
  return runProcess('sh', ['-c', command], { cwd: ROOT, env: { ...userEnv, ...env }, stdin });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('README new-user path', function () {
  this.timeout(180_000);
  let serverPid = 0;

  after(async () => {
    if (serverPid && processAlive(serverPid)) {
      process.kill(serverPid, 'SIGTERM');
      for (let i = 0; i < 100 && processAlive(serverPid); i++) await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('clone, install, quickstart with a streamed chat, then an openai and an ollama client', async () => {
    const { bash, js } = readmePath();
    expect(bash[0]).to.match(/^git clone \S+ && cd inferflux$/);
    expect(bash[1]).to.equal('npm ci');
    const quickstart = bash[2]!;
    expect(bash).to.have.length(3);

    const port = await freePort();
    const env = { INFERCTL_URL: `http://127.0.0.1:${port}`, NO_COLOR: '1' };
    const first = await sh(quickstart, env, 'Hello\n');
    expect(first.code, first.stderr).to.equal(0);
    const started = /started one \(pid (\d+)/.exec(first.stderr);
    expect(started, first.stderr).to.not.equal(null);
    serverPid = Number(started![1]);
    const log = /server log: (\S+)/.exec(first.stderr)![1]!;
    expect(readFileSync(log, 'utf8')).to.contain(`listening on http://127.0.0.1:${port} (models: demo)`);
    expect(first.stdout.trim().length, 'a streamed answer').to.be.above(0);

    // The README's OpenAI client, then its Ollama client, as written, against that server.
    expect(js, 'an openai and an ollama snippet').to.have.length(2);
    expect(js[0]).to.contain("from 'openai'");
    expect(js[1]).to.contain("from 'ollama'");
    for (const [i, snippet] of js.entries()) {
      const file = `${ROOT}hello-readme-test-${process.pid}-${i}.mjs`;
      writeFileSync(file, snippet.replaceAll('http://127.0.0.1:8080', `http://127.0.0.1:${port}`));
      try {
        const hello = await sh(`node ${file}`, {});
        expect(hello.code, hello.stderr).to.equal(0);
        expect(hello.stdout.trim().length, `snippet ${i} streamed text`).to.be.above(0);
      } finally {
        rmSync(file, { force: true });
      }
    }

    // Run again: the running server is used, not a second one started.
    const again = await sh(quickstart, env, '/exit\n');
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.contain(`using the server at http://127.0.0.1:${port}`);
    expect(again.stderr).to.not.contain('started one');
  });
});
