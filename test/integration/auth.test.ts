/**
 * Authentication, authorisation, rate limits, OIDC, CORS and TLS on the real server (child
 * process, tiny model), driven with the `openai` client and fetch. The OIDC issuer is a loopback
 * node:http server of this test, serving discovery and a JWKS of real RS256/ES256 keys.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import OpenAI from 'openai';
import { startServer, type RunningServer } from '../helpers/server.js';

const GEN_KEY = 'sk-it-generate-key-0001';
const READ_KEY = 'sk-it-read-only-key-0002';
const BURST_KEY = 'sk-it-burst-key-0003';
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const chat = { model: 'tiny-seed0', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 2 };

type Key = { privateKey: Parameters<SignJWT['sign']>[0]; publicJwk: JWK };

async function makeKey(alg: 'RS256' | 'ES256', kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A loopback OIDC issuer: discovery + JWKS, keys swappable, fetches counted. */
async function startIssuer() {
  const state = { keys: [] as JWK[], jwksFetches: 0 };
  const srv = http.createServer((req, res) => {
    const issuer = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
    if (req.url === '/.well-known/openid-configuration') {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    }
    if (req.url === '/jwks') {
      state.jwksFetches++;
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ keys: state.keys }));
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  return { issuer, state, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

/** `Response.json()` is typed `unknown`; the tests read error bodies. */
interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

async function post(url: string, path: string, headers: Record<string, string>, body: unknown = chat) {
  return fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

async function errorOf(r: Response): Promise<ErrorBody['error']> {
  return ((await r.json()) as ErrorBody).error;
}

describe('auth, rate limits, OIDC and CORS on the real server', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let issuer: Awaited<ReturnType<typeof startIssuer>>;
  let rs: Key;
  let es: Key;
  let cfgDir: string;
  const now = () => Math.floor(Date.now() / 1000);

  const token = (key: Key, claims: Record<string, unknown> = {}, opts: { iss?: string; aud?: string; exp?: number; nbf?: number; kid?: string } = {}) => {
    const jwt = new SignJWT({ scope: 'generate read', tenant: 'team-o', ...claims })
      .setProtectedHeader({ alg: key.publicJwk.alg!, kid: opts.kid ?? key.publicJwk.kid! })
      .setSubject(typeof claims.sub === 'string' ? claims.sub : 'alice')
      .setIssuer(opts.iss ?? issuer.issuer)
      .setAudience(opts.aud ?? 'inferflux')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? now() + 300);
    if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
    return jwt.sign(key.privateKey);
  };

  before(async () => {
    issuer = await startIssuer();
    rs = await makeKey('RS256', 'rs1');
    es = await makeKey('ES256', 'es1');
    issuer.state.keys = [rs.publicJwk, es.publicJwk];
    cfgDir = mkdtempSync(join(tmpdir(), 'ifx-auth-'));
    const cfg = join(cfgDir, 'server.yaml');
    writeFileSync(
      cfg,
      [
        'server:',
        '  cors:',
        '    allowed_origins: ["https://app.example.com"]',
        'auth:',
        '  oidc:',
        '    jwks_cooldown_seconds: 1',
        '',
      ].join('\n'),
    );
    server = await startServer({
      INFERFLUX_CONFIG: cfg,
      INFERFLUX_API_KEYS: `${GEN_KEY}:generate|read@team-a,${READ_KEY}:read,${BURST_KEY}:generate`,
      INFERFLUX_RATE_LIMIT_PER_MINUTE: '4',
      INFERFLUX_OIDC_ISSUER: issuer.issuer,
      INFERFLUX_OIDC_AUDIENCE: 'inferflux',
    });
  });
  after(async () => {
    await server?.stop();
    await issuer?.close();
    if (cfgDir) rmSync(cfgDir, { recursive: true, force: true });
  });

  it('start-up says auth is on and never prints a key', () => {
    expect(server.logs()).to.match(/auth on: 3 API key\(s\) \+ OIDC/);
    for (const k of [GEN_KEY, READ_KEY, BURST_KEY]) expect(server.logs()).not.to.contain(k);
  });

  it('401 without a key and with a wrong key (openai client: AuthenticationError)', async () => {
    const r = await post(server.url, '/v1/chat/completions', {});
    expect(r.status).to.equal(401);
    expect(r.headers.get('www-authenticate')).to.equal('Bearer realm="inferflux"');
    expect(await errorOf(r)).to.deep.include({ type: 'authentication_error', code: 'unauthorized' });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-wrong-wrong-wrong', maxRetries: 0 });
    try {
      await client.chat.completions.create(chat);
      expect.fail('expected a 401');
    } catch (err) {
      expect(err).to.be.instanceOf(OpenAI.AuthenticationError);
      expect((err as InstanceType<typeof OpenAI.AuthenticationError>).status).to.equal(401);
    }
  });

  it('403 for a read-only key on completions; it may list models', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: READ_KEY, maxRetries: 0 });
    try {
      await client.completions.create({ model: 'tiny-seed0', prompt: 'x', max_tokens: 1 });
      expect.fail('expected a 403');
    } catch (err) {
      expect(err).to.be.instanceOf(OpenAI.PermissionDeniedError);
    }
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).to.include('tiny-seed0');
  });

  it('200 with a generate key through Authorization: Bearer (openai client) and through x-api-key', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: GEN_KEY, maxRetries: 0 });
    const c = await client.chat.completions.create(chat);
    expect(c.choices).to.have.length(1);
    const r = await post(server.url, '/v1/chat/completions', { 'x-api-key': GEN_KEY, traceparent: TRACE });
    expect(r.status).to.equal(200);
    expect(r.headers.get('traceparent')).to.equal(TRACE);
    expect(r.headers.get('x-ratelimit-limit-requests')).to.equal('4');
  });

  it('429 rate_limited after the per-minute limit, with Retry-After and x-ratelimit headers', async () => {
    for (let i = 0; i < 4; i++) expect((await fetch(`${server.url}/v1/models`, { headers: { 'x-api-key': BURST_KEY } })).status).to.equal(403);
    // 403s are refused before the rate limiter: the bucket is still full.
    for (let i = 0; i < 4; i++) expect((await post(server.url, '/v1/chat/completions', { 'x-api-key': BURST_KEY })).status).to.equal(200);
    const r = await post(server.url, '/v1/chat/completions', { 'x-api-key': BURST_KEY });
    expect(r.status).to.equal(429);
    expect(Number(r.headers.get('retry-after'))).to.be.within(1, 15);
    expect(r.headers.get('x-ratelimit-limit-requests')).to.equal('4');
    expect(r.headers.get('x-ratelimit-remaining-requests')).to.equal('0');
    expect(await errorOf(r)).to.deep.include({ type: 'rate_limit_error', code: 'rate_limited' });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: BURST_KEY, maxRetries: 0 });
    try {
      await client.chat.completions.create(chat);
      expect.fail('expected a 429');
    } catch (err) {
      expect(err).to.be.instanceOf(OpenAI.RateLimitError);
    }
  });

  it('OIDC: valid RS256 and ES256 tokens are accepted with scopes and tenant from the claims', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: await token(rs), maxRetries: 0 });
    expect((await client.chat.completions.create(chat)).choices).to.have.length(1);
    // ES256, scopes in `scp` as a list: read only.
    const esTok = await token(es, { scope: undefined, scp: ['read'] });
    expect((await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${esTok}` } })).status).to.equal(200);
    expect((await post(server.url, '/v1/chat/completions', { authorization: `Bearer ${esTok}` })).status).to.equal(403);
  });

  it('OIDC: expired, not-yet-valid, wrong audience, wrong issuer, bad signature, alg none and unknown kid are all 401', async () => {
    const other = await makeKey('RS256', 'rs1'); // same kid, different key: bad signature
    const stranger = await makeKey('RS256', 'nope');
    const cases: [string, string][] = [
      ['expired', await token(rs, {}, { exp: now() - 120 })],
      ['not yet valid', await token(rs, {}, { nbf: now() + 600 })],
      ['wrong audience', await token(rs, {}, { aud: 'someone-else' })],
      ['wrong issuer', await token(rs, {}, { iss: 'http://127.0.0.1:1' })],
      ['bad signature', await token(other)],
      ['alg none', `${b64url({ alg: 'none', kid: 'rs1' })}.${b64url({ sub: 'alice', iss: issuer.issuer, aud: 'inferflux', exp: now() + 300, scope: 'generate' })}.`],
      ['unknown kid', await token(stranger)],
    ];
    for (const [name, tok] of cases) {
      const r = await post(server.url, '/v1/chat/completions', { authorization: `Bearer ${tok}` });
      expect(r.status, name).to.equal(401);
      expect((await errorOf(r)).code, name).to.equal('unauthorized');
    }
  });

  it('OIDC: a rotated-in key (new kid) is fetched and accepted', async () => {
    const rotated = await makeKey('RS256', 'rs2');
    issuer.state.keys = [rotated.publicJwk, es.publicJwk];
    const before = issuer.state.jwksFetches;
    await new Promise((r) => setTimeout(r, 1100)); // past the 1 s JWKS cooldown
    const r = await post(server.url, '/v1/chat/completions', { authorization: `Bearer ${await token(rotated, { sub: 'bob' })}` });
    expect(r.status).to.equal(200);
    expect(issuer.state.jwksFetches).to.be.greaterThan(before);
  });

  it('CORS: preflight is answered 204 before auth; the allowed origin is echoed', async () => {
    const pre = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(pre.status).to.equal(204);
    expect(pre.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
    expect(pre.headers.get('access-control-allow-methods')).to.equal('POST, OPTIONS');
    expect(pre.headers.get('access-control-allow-headers')).to.equal('authorization,content-type');
    const r = await post(server.url, '/v1/chat/completions', { origin: 'https://app.example.com', 'x-api-key': GEN_KEY });
    expect(r.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
  });

  it('audit: auth outcomes and denials with reasons and traceparent; no key or token in the log', async () => {
    const tok = await token(es, { sub: 'carol', scope: 'read' });
    expect((await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${tok}` } })).status).to.equal(200);
    await server.stop({ keepDir: true });
    try {
      const text = readFileSync(join(server.dir, 'audit.log'), 'utf8');
      for (const secret of [GEN_KEY, READ_KEY, BURST_KEY, 'sk-wrong-wrong-wrong', tok]) expect(text).not.to.contain(secret);
      const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      const auth = lines.filter((l) => l.event === 'auth');
      const denials = lines.filter((l) => l.event === 'denial');
      const reasons = new Set(auth.map((l) => l.detail));
      for (const r of ['missing_credentials', 'unknown_key', 'api_key', 'oidc', 'token_expired', 'token_not_yet_valid', 'wrong_audience', 'wrong_issuer', 'bad_signature', 'unknown_kid']) {
        expect(reasons, r).to.include(r);
      }
      expect(denials.map((l) => l.status)).to.include.members([401, 403, 429]);
      expect(auth.find((l) => l.detail === 'oidc' && l.keyId === 'oidc:carol')).to.include({ tenant: 'team-o', status: 200 });
      expect(lines.some((l) => l.traceparent === TRACE && l.event === 'auth')).to.equal(true);
      expect(lines.some((l) => l.traceparent === TRACE && l.event === 'completion')).to.equal(true);
      for (const l of [...auth, ...denials]) expect(l.traceparent).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
    } finally {
      rmSync(server.dir, { recursive: true, force: true });
    }
  });
});

describe('TLS and start-up refusals on the real server', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves https with the configured certificate; auth off is announced loudly', async () => {
    const server = await startServer({ INFERFLUX_TLS_ENABLED: 'true', INFERFLUX_TLS_CERT_PATH: join(dir, 'c.pem'), INFERFLUX_TLS_KEY_PATH: join(dir, 'k.pem') });
    try {
      expect(server.url).to.match(/^https:\/\//);
      expect(server.logs()).to.match(/"level":"warn".*authentication is OFF/);
      const ca = readFileSync(join(dir, 'c.pem'));
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(`${server.url}/v1/chat/completions`, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (r) => {
          let body = '';
          r.on('data', (d: Buffer) => (body += d.toString()));
          r.on('end', () => resolve({ status: r.statusCode!, body }));
        });
        req.on('error', reject);
        req.end(JSON.stringify(chat));
      });
      expect(res.status).to.equal(200);
      expect(JSON.parse(res.body).object).to.equal('chat.completion');
      // Plain http to the TLS port fails; an untrusted CA is refused.
      await new Promise<void>((resolve) => {
        https.get(`${server.url}/healthz`, (r) => { r.resume(); resolve(); }).on('error', (err) => {
          expect(String(err)).to.match(/self.signed|certificate/i);
          resolve();
        });
      });
    } finally {
      await server.stop();
    }
  });

  it('a missing certificate stops start-up naming server.tls.cert_path', async () => {
    try {
      await startServer({ INFERFLUX_TLS_ENABLED: 'true', INFERFLUX_TLS_CERT_PATH: join(dir, 'missing.pem'), INFERFLUX_TLS_KEY_PATH: join(dir, 'k.pem') });
      expect.fail('expected start-up to fail');
    } catch (err) {
      expect(String(err)).to.match(/server\.tls\.cert_path: cannot read .*missing\.pem \(ENOENT/);
    }
  });

  it('auth.enabled=true without any key or issuer stops start-up naming auth.enabled', async () => {
    try {
      await startServer({ INFERFLUX_AUTH_ENABLED: 'true' });
      expect.fail('expected start-up to fail');
    } catch (err) {
      expect(String(err)).to.match(/auth\.enabled: is true/);
    }
  });
});
