/**
 * The external policy engine through the GuardrailEngine: a real node:http server on 127.0.0.1
 * (allow, deny with reason, boolean result, slow -> timeout in both fail modes, 500, garbage,
 * refused connection) and file:// policies (fixed result, rule set, live edit, broken file).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuardrailEngine, type PromptContext } from '../../src/policy/guardrails/guardrail-engine.js';
import { filePathOf, parseRuleSet } from '../../src/policy/guardrails/opa-client.js';
import type { GuardrailPolicy } from '../../src/policy/types.js';

type Reply = (req: IncomingMessage, body: unknown, res: ServerResponse) => void;

/** A loopback OPA stand-in; each path answers differently, and every input it saw is kept. */
async function startOpa(routes: Record<string, Reply>): Promise<{ url: string; seen: unknown[]; server: Server }> {
  const seen: unknown[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(data) as unknown;
      seen.push(body);
      const reply = routes[req.url ?? ''];
      if (!reply) return res.writeHead(404).end();
      reply(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const json = (value: unknown): Reply => (_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));

function policy(p: Partial<GuardrailPolicy>): GuardrailPolicy {
  return { blocklist: [], pii: { action: 'off', kinds: [] }, opaEndpoint: '', opaTimeoutMs: 200, opaFailMode: 'closed', ...p };
}

const CTX: PromptContext = {
  prompt: { kind: 'chat', messages: [{ role: 'user', content: 'hello there' }] },
  model: 'demo',
  tenant: 'acme',
  keyId: 'key:abc',
  route: '/v1/chat/completions',
};

describe('guardrails: external policy engine over HTTP', () => {
  let opa: Awaited<ReturnType<typeof startOpa>>;
  const timers: NodeJS.Timeout[] = [];

  before(async () => {
    opa = await startOpa({
      '/allow': json({ result: { allow: true } }),
      '/deny': json({ result: { allow: false, reason: 'finance topics are off limits' } }),
      '/bool-false': json({ result: false }),
      '/bool-true': json({ result: true }),
      '/undefined': json({}),
      '/slow': (_req, _body, res) => void timers.push(setTimeout(() => json({ result: true })(_req, _body, res), 1000)),
      '/500': (_req, _body, res) => res.writeHead(500).end('boom'),
      '/garbage': (_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"result": tru'),
      '/redirect': (_req, _body, res) => res.writeHead(307, { location: '/allow' }).end(),
    });
  });

  after(async () => {
    for (const t of timers) clearTimeout(t);
    opa.server.closeAllConnections();
    await new Promise((resolve) => opa.server.close(resolve));
  });

  const check = (path: string, p: Partial<GuardrailPolicy> = {}) =>
    new GuardrailEngine(policy({ opaEndpoint: opa.url + path, ...p })).checkPrompt(CTX);

  it('sends the OPA input document and allows on {"result": {"allow": true}}', async () => {
    opa.seen.length = 0;
    const v = await check('/allow');
    expect(v.allow).to.equal(true);
    expect(opa.seen).to.deep.equal([
      {
        input: {
          prompt: 'hello there',
          messages: [{ role: 'user', content: 'hello there' }],
          model: 'demo',
          tenant: 'acme',
          key_id: 'key:abc',
          route: '/v1/chat/completions',
        },
      },
    ]);
  });

  it('denies with the engine reason', async () => {
    expect(await check('/deny')).to.deep.equal({ allow: false, reason: 'opa_denied', engine: 'opa', detail: 'finance topics are off limits' });
  });

  it('accepts a boolean result', async () => {
    expect(await check('/bool-false')).to.deep.include({ allow: false, reason: 'opa_denied' });
    expect((await check('/bool-true')).allow).to.equal(true);
  });

  it('times out slow answers: closed denies, open allows, both without waiting for the answer', async () => {
    // /slow answers after 1000 ms: a verdict well before that came from the 100 ms timeout (the
    // margin is for a loaded CI machine).
    let t0 = performance.now();
    expect(await check('/slow', { opaTimeoutMs: 100 })).to.deep.include({ allow: false, reason: 'opa_unavailable' });
    expect(performance.now() - t0).to.be.below(800);
    t0 = performance.now();
    expect((await check('/slow', { opaTimeoutMs: 100, opaFailMode: 'open' })).allow).to.equal(true);
    expect(performance.now() - t0).to.be.below(800);
  });

  it('treats 500, garbage, an undefined result, redirects and refused connections as unavailable', async () => {
    for (const path of ['/500', '/garbage', '/undefined', '/redirect']) {
      expect(await check(path), path).to.deep.include({ allow: false, reason: 'opa_unavailable' });
      expect((await check(path, { opaFailMode: 'open' })).allow, path).to.equal(true);
    }
    const refused = new GuardrailEngine(policy({ opaEndpoint: 'http://127.0.0.1:1/v1/data' }));
    expect(await refused.checkPrompt(CTX)).to.deep.include({ allow: false, reason: 'opa_unavailable' });
  });

  it('sends the redacted prompt, never the PII, and skips the call after a local denial', async () => {
    opa.seen.length = 0;
    const e = new GuardrailEngine(policy({ opaEndpoint: opa.url + '/allow', blocklist: ['nope'], pii: { action: 'redact', kinds: ['email'] } }));
    await e.checkPrompt({ ...CTX, prompt: { kind: 'text', text: 'mail me at a@b.io' } });
    await e.checkPrompt({ ...CTX, prompt: { kind: 'text', text: 'nope' } });
    expect(opa.seen).to.have.length(1);
    expect((opa.seen[0] as { input: { prompt: string } }).input.prompt).to.equal('mail me at [REDACTED:email]');
  });
});

describe('guardrails: external policy engine from a file', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'ifx-opa-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, value: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  };

  it('resolves file:///abs and file://relative paths', () => {
    expect(filePathOf('file:///etc/policy.json')).to.equal('/etc/policy.json');
    expect(filePathOf('file://config/policy.json', '/srv')).to.equal('/srv/config/policy.json');
  });

  it('applies a fixed result', async () => {
    const file = write('fixed.json', { result: { allow: false, reason: 'maintenance' } });
    const e = new GuardrailEngine(policy({ opaEndpoint: `file://${file}` }));
    expect(await e.checkPrompt(CTX)).to.deep.equal({ allow: false, reason: 'opa_denied', engine: 'opa', detail: 'maintenance' });
  });

  it('applies a rule set: terms, models, tenants, routes, prompt length', async () => {
    const file = write('rules.json', { deny_terms: ['wire transfer'], allow_models: ['demo'], deny_tenants: ['evil'], max_prompt_chars: 50 });
    const e = new GuardrailEngine(policy({ opaEndpoint: `file://${file}` }));
    const ask = (over: Partial<PromptContext>) => e.checkPrompt({ ...CTX, ...over });
    expect((await ask({})).allow).to.equal(true);
    expect(await ask({ prompt: { kind: 'text', text: 'make a Wire Transfer' } })).to.deep.include({ reason: 'opa_denied', detail: 'denied term' });
    expect(await ask({ model: 'other' })).to.deep.include({ reason: 'opa_denied', detail: 'model not allowed' });
    expect(await ask({ tenant: 'evil' })).to.deep.include({ reason: 'opa_denied', detail: 'tenant denied' });
    expect(await ask({ prompt: { kind: 'text', text: 'x'.repeat(51) } })).to.deep.include({ detail: 'prompt too long' });
  });

  it('re-reads the file when it changes, and fails per fail mode when it breaks', async () => {
    const file = write('live.json', { result: true });
    const closed = new GuardrailEngine(policy({ opaEndpoint: `file://${file}` }));
    const open = new GuardrailEngine(policy({ opaEndpoint: `file://${file}`, opaFailMode: 'open' }));
    expect((await closed.checkPrompt(CTX)).allow).to.equal(true);
    write('live.json', '{ not json');
    const later = new Date(Date.now() + 5000);
    utimesSync(file, later, later);
    // Rechecked at most once a second.
    await new Promise((r) => setTimeout(r, 1050));
    expect(await closed.checkPrompt(CTX)).to.deep.include({ allow: false, reason: 'opa_unavailable' });
    expect((await open.checkPrompt(CTX)).allow).to.equal(true);
  });

  it('rejects unknown fields and bad types in a rule set', () => {
    expect(() => parseRuleSet({ deny_term: [] })).to.throw(/unknown field/);
    expect(() => parseRuleSet({ deny_terms: 'x' })).to.throw(/deny_terms/);
    expect(() => parseRuleSet({ result: 'yes' })).to.throw(/result/);
  });
});
