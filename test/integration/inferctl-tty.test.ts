/**
 * `inferctl chat -i` on a real terminal: the CLI runs in a tmux pseudo-terminal against the real
 * server, keys are sent as a user types them and the screen is read back. Covers the prompt and
 * echo, readline history, multi-line input, /help /save /reset /model and an unknown command
 * (none of them sent to the model), Ctrl-C while an answer streams (the request is aborted: the
 * server counts a cancelled generation, and the session goes on), colour only without NO_COLOR,
 * and Ctrl-C twice at an empty prompt to leave. Needs tmux (`.ci/run` installs it).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const CLI = new URL('../../dist/cli/inferctl.js', import.meta.url).pathname;
const SOCKET = `ifx-tty-${process.pid}`;
const CHAT_OK = 'inferflux_requests_total{route="/v1/chat/completions",model="tiny-seed0",backend="cpu",status="200"}';
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const screen = (escapes = false): string => tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-S', '-200', '-t', 'chat');
const keys = (...k: string[]): void => void tmux('send-keys', '-t', 'chat', ...k);
const alive = (): boolean => spawnSync('tmux', ['-L', SOCKET, 'has-session', '-t', 'chat']).status === 0;

async function until(what: string, test: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await test()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; screen:\n${alive() ? screen() : '(session gone)'}`);
}

/** Lines of the screen that are prompts waiting for input (nothing typed after them). */
const idlePrompts = (): number => screen().split('\n').filter((l) => l === '>>> ' || l === '>>>').length;

describe('inferctl chat on a terminal (tmux)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let dir: string;

  before(async function () {
    if (!hasTmux) throw new Error('tmux is not installed: apt-get install -y tmux (.ci/run does)');
    server = await startServer();
    dir = mkdtempSync(join(tmpdir(), 'ifx-tty-'));
  });
  afterEach(() => {
    if (alive()) tmux('kill-server');
  });
  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function start(extraEnv: string[] = []): void {
    // A wide pane so answers do not scroll the prompt away; the CLI is the pane's only process.
    const cmd = ['env', 'TERM=xterm-256color', ...extraEnv, process.execPath, CLI, '--url', server.url, 'chat', '-i', '--max-tokens', '1900', '--ignore-eos', '--temperature', '0.8'];
    tmux('new-session', '-d', '-s', 'chat', '-x', '200', '-y', '50', '-c', dir, cmd.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '));
  }

  it('prompt, echo, Ctrl-C cancels a streaming answer and the session goes on', async () => {
    start(['NO_COLOR=1']);
    await until('the prompt', () => /^>>>/m.test(screen()));
    expect(screen()).to.contain('/help for commands');
    const cancelledBefore = await metric(server.url, 'inferflux_cancelled_requests_total{model="tiny-seed0"}');
    keys('-l', 'Tell me a long story');
    keys('Enter');
    await until('the echoed input', () => screen().includes('>>> Tell me a long story'));
    // Ctrl-C once the answer is streaming (1900 tokens take seconds on the tiny model).
    await until('streamed text', () => {
      const after = screen().split('>>> Tell me a long story')[1] ?? '';
      return after.replace(/\s/g, '').length > 20;
    });
    keys('C-c');
    await until('the cancel note', () => screen().includes('(answer cancelled'));
    // The request was aborted: the server stopped generating and counted a cancelled generation.
    await until('the cancelled metric', async () => (await metric(server.url, 'inferflux_cancelled_requests_total{model="tiny-seed0"}')) === cancelledBefore + 1, 10_000);
    expect(alive()).to.equal(true);
    await until('a new prompt', () => idlePrompts() >= 1);
    // The session goes on: the cancelled exchange is not in the transcript.
    keys('-l', `/save ${join(dir, 'after-cancel.json')}`);
    keys('Enter');
    await until('the save note', () => screen().includes('(saved 0 message(s)'));
    expect(JSON.parse(readFileSync(join(dir, 'after-cancel.json'), 'utf8')).messages).to.deep.equal([]);
    // No colour with NO_COLOR.
    expect(screen(true)).to.not.match(/\x1b\[[0-9;]*m>>>/);
  });

  it('multi-line input, history, commands, and Ctrl-C twice at an empty prompt leaves', async () => {
    start();
    await until('the prompt', () => /^>>>/m.test(screen()));
    expect(screen(true)).to.match(/\x1b\[[0-9;]*m>>>/); // coloured prompt on a colour terminal
    const requestsBefore = await metric(server.url, CHAT_OK);
    // Commands never reach the model.
    keys('-l', '/help');
    keys('Enter');
    await until('the help', () => screen().includes('/save FILE'));
    keys('-l', '/frobnicate');
    keys('Enter');
    await until('the unknown-command error', () => screen().includes('unknown command /frobnicate'));
    keys('-l', '/model tiny-seed0');
    keys('Enter');
    await until('the model note', () => screen().includes('(model: tiny-seed0)'));
    // History: Up brings back the last line.
    keys('Up');
    await until('the recalled line', () => screen().trimEnd().endsWith('>>> /model tiny-seed0'));
    keys('C-c'); // clears the line, stays in the session
    await until('the cleared line', () => screen().includes('^C'));
    expect(alive()).to.equal(true);
    // Two lines joined by a trailing backslash, then a """ block: two messages, two answers.
    keys('-l', 'first line \\');
    keys('Enter');
    await until('the continuation prompt', () => /^\.\.\./m.test(screen()));
    keys('-l', 'second line');
    keys('Enter');
    await until('the answer', async () => (await metric(server.url, CHAT_OK)) === requestsBefore + 1, 30_000);
    await until('a new prompt', () => idlePrompts() >= 1, 30_000);
    keys('-l', `/save ${join(dir, 'session.json')}`);
    keys('Enter');
    await until('the save note', () => screen().includes('(saved 2 message(s)'));
    const saved = JSON.parse(readFileSync(join(dir, 'session.json'), 'utf8')) as { model: string; messages: { role: string; content: string }[] };
    expect(saved.model).to.equal('tiny-seed0');
    expect(saved.messages.map((m) => m.role)).to.deep.equal(['user', 'assistant']);
    expect(saved.messages[0]!.content).to.equal('first line \nsecond line');
    expect(saved.messages[1]!.content.length).to.be.above(100);
    keys('-l', '/reset');
    keys('Enter');
    await until('the reset note', () => screen().includes('(conversation cleared)'));
    keys('-l', '"""');
    keys('Enter');
    keys('-l', 'a block');
    keys('Enter');
    await until('the block continuation', () => screen().trimEnd().endsWith('...'));
    keys('C-c'); // drops the half-typed block
    await until('the dropped block', () => screen().split('^C').length >= 3);
    expect(await metric(server.url, CHAT_OK)).to.equal(requestsBefore + 1);
    // Ctrl-C at an empty prompt warns; a second one leaves.
    keys('C-c');
    await until('the leave hint', () => screen().includes('(Ctrl-C again'));
    expect(alive()).to.equal(true);
    keys('C-c');
    await until('the session to end', () => !alive(), 5000);
    expect(existsSync(join(dir, 'session.json'))).to.equal(true);
  });
});
