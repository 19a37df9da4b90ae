/**
 * The operations console in a real browser: Debian's headless Chromium (`/usr/bin/chromium`,
 * driven by playwright-core; no browser is ever downloaded) against the real server (actors +
 * llama.cpp on the tiny model) on an ephemeral loopback port. The page asks for a key, lists the
 * model, follows a long streaming generation live (running sequences and generated tokens move
 * while it runs, then it shows in recent requests with its tokens and TTFT), lists a guardrail
 * denial and a PII redaction, runs the playground, and never loads anything from another origin or breaks its CSP.
 * Screenshots go to $INFERFLUX_TEST_ARTIFACTS (default /tmp/inferflux-test-artifacts); the paths
 * are printed.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '../helpers/server.js';

const CHROMIUM = process.env.INFERFLUX_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.INFERFLUX_TEST_ARTIFACTS ?? '/tmp/inferflux-test-artifacts';
const MODEL = 'tiny-seed0';
const ADMIN = 'sk-console-admin-0123456789';
const USER = 'sk-console-user-0123456789';

/** Polls `read` until `ok` holds (or fails with the last value after `ms`). */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T = await read();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
    last = await read();
  }
  return last;
}

const cells = (page: Page, selector: string) => page.$$eval(selector, (tds) => tds.map((td) => td.textContent ?? ''));
const text = (page: Page, selector: string) => page.$eval(selector, (el) => el.textContent ?? '');
const count = (v: string) => Number(v.replace(/[^0-9]/g, ''));

describe('console in headless Chromium', function () {
  this.timeout(180_000);
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const foreign: string[] = [];
  const pageErrors: string[] = [];

  before(async function () {
    // Like redis-server and tmux for their tests: a missing browser is a set-up error to fix, not a
    // pass (a skipped console test would let the page break unnoticed).
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does), or set INFERFLUX_CHROMIUM`);
    server = await startServer({
      INFERFLUX_API_KEYS: `${ADMIN}:admin|generate|read,${USER}:generate|read@team-a`,
      INFERFLUX_GUARDRAIL_BLOCKLIST: 'classified',
      INFERFLUX_RATE_LIMIT_PER_MINUTE: '1000',
      // Room for a generation long enough (several seconds) to watch it run.
      INFERFLUX_CONTEXT_SIZE: '8192',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) foreign.push(r.url());
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) pageErrors.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    const code = await server?.stop();
    if (server) expect(code, 'server exit code after SIGTERM').to.equal(0);
  });

  it('asks for a key, then lists the model and its pools', async () => {
    const res = await page.goto(`${server.url}/ui`);
    expect(res?.status()).to.equal(200);
    expect(res?.headers()['content-security-policy']).to.include("default-src 'none'");
    await until('the key prompt', () => text(page, '#status'), (s) => s.startsWith('enter an admin key'));
    expect(await text(page, '#status')).to.include('unauthorized');

    // A key without admin scope is refused by the console API, and the page says so.
    await page.fill('#api-key', USER);
    await page.click('#key-save');
    await until('the 403', () => text(page, '#status'), (s) => s.includes('forbidden'));

    await page.fill('#api-key', ADMIN);
    await page.click('#key-save');
    await until('live status', () => text(page, '#status'), (s) => s === 'live');
    const row = await cells(page, `#models tbody tr[data-id="${MODEL}"] td`);
    expect(row.slice(0, 3)).to.deep.equal([MODEL, 'ready', 'yes']);
    const pools = await cells(page, '#pools tbody tr td:first-child');
    expect(pools).to.include.members(['decode', 'scheduler']);
    expect(await page.content()).to.not.include(ADMIN);
  });

  it('follows a streaming generation while it runs, then lists it with tokens and TTFT', async () => {
    const id = 'console-stream-1';
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${USER}`, 'x-request-id': id },
      // Two choices of 4000 tokens (limits.max_tokens is 4096): two sequences for several seconds.
      body: JSON.stringify({ model: MODEL, stream: true, n: 2, max_tokens: 4000, ignore_eos: true, messages: [{ role: 'user', content: 'Tell me a long story.' }] }),
    });
    if (res.status !== 200) throw new Error(`stream refused: ${res.status} ${await res.text()}`);
    // Read the whole stream in the background, as a client would.
    const body = res.text();

    const row = `#running tbody tr[data-id="${id}"]`;
    await until('the running row', () => page.$(row), (el) => el !== null);
    // Both choices hold a sequence while they generate.
    await until('two running sequences', () => text(page, '#running-seqs'), (t) => /^2 of \d+$/.test(t));
    await until('the running phase', async () => (await cells(page, `${row} td`))[4], (p) => p === 'running');
    const first = await until('generated tokens', async () => count((await cells(page, `${row} td`))[6] ?? ''), (n) => n > 0);
    // The page updates while the generation runs: the count grows between snapshots.
    const later = await until('more generated tokens', async () => count((await cells(page, `${row} td`))[6] ?? '0'), (n) => n > first);
    expect(later).to.be.greaterThan(first);
    expect(count(await text(page, '#tokens-now'))).to.be.greaterThan(0);
    mkdirSync(ARTIFACTS, { recursive: true });
    const running = join(ARTIFACTS, 'console-running.png');
    await page.screenshot({ path: running, fullPage: true });
    console.log(`      screenshot (generation running): ${running}`);

    const sse = await body;
    expect(sse).to.include('data: [DONE]');
    const done = `#requests tbody tr[data-id="${id}"] td`;
    const cols = await until('the finished request', () => cells(page, done), (c) => c.length > 0);
    expect(cols[4]).to.equal('/v1/chat/completions');
    expect(cols[5]).to.equal(MODEL);
    expect(cols[6]).to.equal('200');
    expect(cols[8]).to.match(/^\d+ \/ 8,000$/);
    expect(cols[9]).to.match(/^\d+(\.\d+)? m?s$/);
    await until('the running row to go', () => page.$(row), (el) => el === null);
    expect(count(await text(page, '#tokens-completion'))).to.be.at.least(8000);
  });

  it('lists a guardrail denial and a redaction with their reasons, never the prompt', async () => {
    const id = 'console-denied-1';
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${USER}`, 'x-request-id': id },
      body: JSON.stringify({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: 'the classified plans' }] }),
    });
    expect(res.status).to.equal(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('guardrail_denied');
    const cols = await until('the denial', () => cells(page, `#guardrails tbody tr[data-id="${id}"] td`), (c) => c.length > 0);
    expect(cols.slice(1, 5)).to.deep.equal(['deny', 'prompt', 'blocklist', '/v1/chat/completions']);
    expect(await text(page, '#guardrails-policy')).to.match(/^active · blocklist 1 term\(s\)/);
    const req = await until('the 400 in recent requests', () => cells(page, `#requests tbody tr[data-id="${id}"] td`), (c) => c.length > 0);
    expect(req[6]).to.equal('400 guardrail_denied');
    expect(await page.content()).to.not.include('classified plans');

    // PII redaction (prompts only here) through the admin API: listed with its kinds, never the address.
    const put = await fetch(`${server.url}/v1/admin/guardrails`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ pii: { action: 'redact', kinds: ['email'], output: false } }),
    });
    expect(put.status).to.equal(200);
    const rid = 'console-redacted-1';
    const ok = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${USER}`, 'x-request-id': rid },
      body: JSON.stringify({ model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'write to jane.doe@example.com' }] }),
    });
    expect(ok.status).to.equal(200);
    await ok.body?.cancel();
    const red = await until('the redaction', () => cells(page, `#guardrails tbody tr[data-id="${rid}"] td`), (c) => c.length > 0);
    expect(red.slice(1, 4)).to.deep.equal(['redact', 'prompt', 'email']);
    expect(await text(page, '#guardrails-policy')).to.include('PII redact (email)');
    expect(await page.content()).to.not.include('jane.doe');

    // The rate-limit budget of the user's key, as its last request was told.
    const keys = await cells(page, '#limit-keys tbody tr td:nth-child(3)');
    expect(keys.some((k) => / \/ 1,000$/.test(k))).to.equal(true);
  });

  it('runs the playground, and the page never left its origin or broke its CSP', async () => {
    await page.fill('#chat-input', 'Hello there');
    await page.fill('#chat-max', '8');
    await page.click('#chat-send');
    await page.waitForSelector('#chat-output[data-done="true"]', { timeout: 30_000 });
    expect((await text(page, '#chat-output')).length).to.be.greaterThan(0);
    expect(await text(page, '#chat-error')).to.equal('');
    // The playground request shows up like any other.
    await until('the playground request', () => cells(page, '#requests tbody tr td:nth-child(5)'), (c) => c.filter((r) => r === '/v1/chat/completions').length >= 4);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'console.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`      screenshot: ${shot}`);
    expect(foreign, 'requests to other origins').to.deep.equal([]);
    expect(pageErrors, 'page errors (CSP violations included)').to.deep.equal([]);
  });
});
