/**
 * Pure pieces of the policy layer: key parsing and hashing, constant-time compare, the route
 * scope table, the pipeline composer, traceparent and the start-up auth decision.
 */
import { expect } from 'chai';
import { ConfigError } from '../../src/config/load.js';
import { KeyRegistry, KeySpecError, hashKey, hashesEqual, parseApiKeysEnv, toRecord } from '../../src/policy/api-keys.js';
import { decideAuth } from '../../src/policy/auth-mode.js';
import { compose, credentialsOf, type PolicyContext, type Step } from '../../src/policy/pipeline.js';
import { ANONYMOUS } from '../../src/policy/principal.js';
import { ROUTE_SCOPES, accessFor, allows, findRow } from '../../src/policy/rbac.js';
import { newTraceparent, parseTraceparent, traceparentFor } from '../../src/policy/traceparent.js';
import { normalisePath } from '../../src/http/router.js';
import { buildRouter } from '../../src/http/server.js';
import { Metrics } from '../../src/metrics.js';
import type { Scope } from '../../src/policy/types.js';
import { FakeGateway, testConfig } from './http-fixtures.js';

const NOW = new Date('2026-01-01T00:00:00Z');

describe('policy: api keys', () => {
  it('hashes keys with SHA-256 and keeps no plaintext in the record', () => {
    const rec = toRecord({ key: 'sk-test-secret-1', scopes: ['generate', 'read', 'generate'], tenant: 'team-a' }, 'config', 'auth.api_keys[0]', NOW);
    expect(rec).to.deep.equal({
      hash: hashKey('sk-test-secret-1'),
      id: `key:${hashKey('sk-test-secret-1').slice(0, 12)}`,
      scopes: ['generate', 'read'],
      tenant: 'team-a',
      createdAt: NOW.toISOString(),
      origin: 'config',
    });
    expect(JSON.stringify(rec)).not.to.contain('sk-test-secret-1');
    expect(hashKey('abc')).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('accepts key_sha256 (any case) and refuses bad specs with where they came from', () => {
    const h = hashKey('another-key-2');
    expect(toRecord({ keySha256: h.toUpperCase(), scopes: ['admin'], priority: 5 }, 'config', 'x', NOW)).to.include({ hash: h, priority: 5, tenant: 'default' });
    const bad = (spec: Parameters<typeof toRecord>[0]) => {
      try {
        toRecord(spec, 'config', 'auth.api_keys[3]', NOW);
      } catch (err) {
        expect(err).to.be.instanceOf(KeySpecError);
        expect((err as KeySpecError).where).to.equal('auth.api_keys[3]');
        return (err as Error).message;
      }
      throw new Error('expected a KeySpecError');
    };
    expect(bad({ scopes: ['read'] })).to.equal('needs exactly one of key or key_sha256');
    expect(bad({ key: 'short', scopes: ['read'] })).to.equal('key must be 8..512 characters');
    expect(bad({ key: 'long-enough-key', scopes: [] })).to.match(/at least one scope/);
    expect(bad({ key: 'long-enough-key', scopes: ['root'] })).to.match(/unknown scope "root"/);
    expect(bad({ keySha256: 'abc', scopes: ['read'] })).to.match(/64 hex/);
    expect(bad({ key: 'long-enough-key', scopes: ['read'], tenant: 'a b' })).to.match(/tenant/);
  });

  it('parses INFERFLUX_API_KEYS: key[:scope|scope][@tenant], defaults generate|read and tenant default', () => {
    expect(parseApiKeysEnv('sk-aaaaaaaa:generate|read@team-a, sk-bbbbbbbb:admin ,sk-cccccccc,,sk-dddddddd@t2')).to.deep.equal([
      { key: 'sk-aaaaaaaa', scopes: ['generate', 'read'], tenant: 'team-a' },
      { key: 'sk-bbbbbbbb', scopes: ['admin'], tenant: undefined },
      { key: 'sk-cccccccc', scopes: ['generate', 'read'], tenant: undefined },
      { key: 'sk-dddddddd', scopes: ['generate', 'read'], tenant: 't2' },
    ]);
  });

  it('compares digests in constant time and only ever equal-length hex digests', () => {
    const a = hashKey('one-key-value');
    expect(hashesEqual(a, a)).to.equal(true);
    expect(hashesEqual(a, hashKey('other-key-value'))).to.equal(false);
    expect(hashesEqual(a, a.slice(0, 63))).to.equal(false);
    expect(hashesEqual(a, 'not hex')).to.equal(false);
  });

  it('registry looks keys up by hash; the first source wins on duplicates', () => {
    const cfg = toRecord({ key: 'shared-key-123', scopes: ['read'] }, 'config', 'a', NOW);
    const store = { ...toRecord({ key: 'shared-key-123', scopes: ['admin'] }, 'store', 'b', NOW) };
    const other = toRecord({ key: 'store-only-key', scopes: ['generate'] }, 'store', 'c', NOW);
    const reg = new KeyRegistry([cfg], [store, other]);
    expect(reg.size).to.equal(2);
    expect(reg.lookup('shared-key-123')!.scopes).to.deep.equal(['read']);
    expect(reg.lookup('store-only-key')!.origin).to.equal('store');
    expect(reg.lookup('nope-nope-nope')).to.equal(undefined);
    expect(reg.lookup('')).to.equal(undefined);
  });

  it('reads Bearer (any case) or x-api-key; other schemes are refused', () => {
    expect(credentialsOf('Bearer abc.def', '')).to.deep.equal({ token: 'abc.def' });
    expect(credentialsOf('bearer   tok ', 'ignored')).to.deep.equal({ token: 'tok' });
    expect(credentialsOf('', ' k1 ')).to.deep.equal({ token: 'k1' });
    expect(credentialsOf('Basic dXNlcjpwYXNz', '')).to.deep.equal({ missing: 'unsupported_auth_scheme' });
    expect(credentialsOf('Bearer', '')).to.deep.equal({ missing: 'unsupported_auth_scheme' });
    expect(credentialsOf('', '')).to.deep.equal({ missing: 'missing_credentials' });
  });
});

describe('policy: rbac table', () => {
  const seg = (p: string) => normalisePath(p)!;
  const need = (p: string) => accessFor(seg(p));
  const can = (p: string, scopes: Scope[], metricsPublic = true) => allows(need(p), new Set(scopes), metricsPublic);

  it('maps routes to scopes', () => {
    expect(can('/v1/chat/completions', ['generate'])).to.equal(true);
    expect(can('/v1/chat/completions', ['read', 'admin'])).to.equal(false);
    expect(can('/v1/completions', ['generate'])).to.equal(true);
    expect(can('/api/v0/chat/completions', ['generate'])).to.equal(true);
    expect(can('/api/v0/completions', ['read'])).to.equal(false);
    expect(can('/v1/messages', ['generate'])).to.equal(true);
    expect(can('/v1/responses', ['read'])).to.equal(false);
    expect(can('/api/chat', ['generate'])).to.equal(true);
    expect(can('/api/tags', ['read'])).to.equal(true);
    expect(can('/api/delete', ['generate', 'read'])).to.equal(false);
    expect(can('/tokenize', ['read'])).to.equal(true);
    expect(can('/tokenize', ['generate'])).to.equal(false);
    expect(can('/v1/models', ['read'])).to.equal(true);
    expect(can('/v1/models/org%2Fmodel', ['read'])).to.equal(true);
    expect(can('/v1/models', ['generate'])).to.equal(false);
    expect(can('/api/v0/models', ['read'])).to.equal(true);
    expect(can('/v1/admin/guardrails', ['admin'])).to.equal(true);
    expect(can('/v1/admin/guardrails', ['adapter-manager'])).to.equal(false);
    expect(can('/v1/admin/api_keys', ['read', 'generate'])).to.equal(false);
  });

  it('ops probes are public, /metrics is public unless configured, unknown paths need admin', () => {
    for (const p of ['/healthz', '/livez', '/readyz']) expect(can(p, [])).to.equal(true);
    expect(can('/metrics', [])).to.equal(true);
    expect(can('/metrics', [], false)).to.equal(false);
    expect(can('/metrics', ['read'], false)).to.equal(true);
    expect(need('/v2/something')).to.deep.equal({ kind: 'scopes', anyOf: ['admin'] });
  });

  it('judges the normalised path: dot segments and encodings cannot dodge the admin rule', () => {
    expect(need('/v1/models/../admin/api_keys')).to.deep.equal({ kind: 'scopes', anyOf: ['admin'] });
    expect(need('//v1//admin/%2e%2e/admin/guardrails')).to.deep.equal({ kind: 'scopes', anyOf: ['admin'] });
  });

  it('every registered route has an explicit row', () => {
    const router = buildRouter({ config: testConfig(), gateway: new FakeGateway(), metrics: new Metrics({ defaultMetrics: false }) });
    const patterns = (router as unknown as { routes: { pattern: string }[] }).routes.map((r) => r.pattern);
    expect(patterns.length).to.be.greaterThan(5);
    for (const p of patterns) {
      const segs = p.split('/').filter(Boolean).map((s) => (s.startsWith(':') ? 'x' : s));
      expect(findRow(segs), `no rbac row for ${p}`).to.not.equal(undefined);
    }
    expect(ROUTE_SCOPES.length).to.be.greaterThan(10);
  });

  it('lists only routes that exist: every row covers at least one registered route', () => {
    // A policy service makes the admin routes register (nothing calls it here).
    // Model and adapter control make the admin model and adapter routes register, debug control
    // /debug (nothing calls them here either).
    const gateway = Object.assign(new FakeGateway(), { modelControl: {} as never, adapterControl: {} as never, debug: {} as never });
    const router = buildRouter({ config: testConfig(), gateway, metrics: new Metrics({ defaultMetrics: false }), policy: {} as never });
    const patterns = (router as unknown as { routes: { pattern: string }[] }).routes.map((r) => r.pattern);
    const covers = (row: string, route: string): boolean => {
      const r = row.split('/').filter(Boolean);
      const p = route.split('/').filter(Boolean);
      const prefix = r.at(-1) === '*';
      if (prefix) r.pop();
      if (prefix ? p.length < r.length : p.length !== r.length) return false;
      return r.every((seg, i) => seg.startsWith(':') || seg === p[i]);
    };
    for (const [row] of ROUTE_SCOPES) expect(patterns.some((p) => covers(row, p)), `rbac row ${row} serves no route`).to.equal(true);
  });
});

describe('policy: pipeline composer', () => {
  const ctx = (): PolicyContext => ({
    method: 'get',
    segments: [],
    route: '/x',
    requestId: 'r',
    traceparent: '',
    authorization: '',
    apiKey: '',
    principal: ANONYMOUS,
    responseHeaders: {},
    chargeTokens: undefined,
    whenFinished: () => undefined,
  });

  it('runs steps in order, then the final handler', () => {
    const seen: string[] = [];
    const mk = (name: string): Step => (_c, next) => {
      seen.push(name);
      return next();
    };
    compose([mk('a'), mk('b'), mk('c')], () => void seen.push('final'))(ctx());
    expect(seen).to.deep.equal(['a', 'b', 'c', 'final']);
  });

  it('a step that throws stops the chain; the final never runs', () => {
    let ran = false;
    const deny: Step = () => {
      throw new Error('denied');
    };
    expect(() => compose([deny], () => void (ran = true))(ctx())).to.throw('denied');
    expect(ran).to.equal(false);
  });

  it('throws when next() is called twice', () => {
    const twice: Step = (_c, next) => {
      void next();
      return next();
    };
    let finals = 0;
    expect(() => compose([twice], () => void finals++)(ctx())).to.throw(/next\(\) called more than once/);
    expect(finals).to.equal(1);
  });

  it('stays synchronous unless a step awaits', async () => {
    const sync = compose([(_c, n) => n()], () => undefined)(ctx());
    expect(sync).to.equal(undefined);
    let done = false;
    const later = compose([(_c, n) => Promise.resolve().then(n)], () => void (done = true))(ctx());
    expect(later).to.be.instanceOf(Promise);
    expect(done).to.equal(false);
    await later;
    expect(done).to.equal(true);
  });
});

describe('policy: traceparent', () => {
  const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it('accepts the W3C format and keeps a valid header', () => {
    expect(parseTraceparent(valid)).to.deep.equal({ version: '00', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', flags: '01' });
    expect(traceparentFor(valid)).to.equal(valid);
    expect(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra')).to.not.equal(null);
  });
  it('refuses malformed, upper-case, all-zero ids, version ff and extra fields on 00', () => {
    for (const bad of [
      '',
      'garbage',
      valid.toUpperCase(),
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `${valid}-extra`,
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
    ]) {
      expect(parseTraceparent(bad), bad).to.equal(null);
    }
  });
  it('generates a fresh valid one when absent or invalid', () => {
    const t = traceparentFor('nonsense');
    expect(parseTraceparent(t)).to.not.equal(null);
    expect(newTraceparent()).to.not.equal(newTraceparent());
  });
});

describe('policy: start-up auth decision', () => {
  const base = { enabled: 'auto' as const, enabledSource: 'built-in default', oidc: null };
  it('auto: on with keys, off with a WARNING on loopback without any', () => {
    expect(decideAuth(base, 2, '0.0.0.0')).to.deep.equal({ enabled: true, warning: null, summary: 'auth on: 2 API key(s)' });
    const open = decideAuth(base, 0, '127.0.0.1');
    expect(open.enabled).to.equal(false);
    expect(open.warning).to.match(/^authentication is OFF/);
  });
  it('auto without credentials on a non-loopback host refuses to start, naming auth', () => {
    expect(() => decideAuth(base, 0, '0.0.0.0')).to.throw(ConfigError, /^auth\.enabled: no API key or OIDC issuer/);
  });
  it('true without credentials fails; false always warns', () => {
    expect(() => decideAuth({ ...base, enabled: true }, 0, '127.0.0.1')).to.throw(ConfigError, /^auth\.enabled: is true/);
    const off = decideAuth({ ...base, enabled: false, enabledSource: 'INFERFLUX_AUTH_ENABLED' }, 3, '0.0.0.0');
    expect(off.enabled).to.equal(false);
    expect(off.warning).to.match(/DISABLED by auth.enabled=false \(from INFERFLUX_AUTH_ENABLED\), although 3 API key\(s\)/);
  });
});
