/**
 * The download module against a loopback hub and CDN (test/helpers/fake-hub.ts) serving the
 * project's generated tiny GGUF: quant choice, redirects, resume with Range, digests, GGUF
 * validation, the address allow-list, hostile names, and the local store (list, copy, rm).
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferFluxError } from '../../src/errors.js';
import { pickGguf, quantOf } from '../../src/runtime/models/hub.js';
import { checkModelName, parseModelRef } from '../../src/runtime/models/model-ref.js';
import { ModelStore } from '../../src/runtime/models/model-store.js';
import { pullModel, type PullEvent, type PullSettings } from '../../src/runtime/models/pull.js';
import { hopHeaders } from '../../src/runtime/models/safe-get.js';
import { startFakeHub, sha256, tinyGguf, type FakeHub } from '../helpers/fake-hub.js';

const TOKEN = 'hf_test_0123456789abcdef';

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof InferFluxError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('model pull (loopback hub)', function () {
  this.timeout(30_000);
  let hub: FakeHub;
  let gguf: Buffer;
  let root: string;
  let dir: string;
  let settings: PullSettings;

  before(async () => {
    gguf = await tinyGguf();
    const corrupt = Buffer.from(gguf);
    corrupt[corrupt.length - 10] ^= 0xff;
    const notGguf = Buffer.from('this is not a gguf file at all, only text'.repeat(10));
    hub = await startFakeHub({
      'acme/tiny-GGUF': [
        { path: 'tiny-Q8_0.gguf', bytes: gguf },
        { path: 'tiny-Q4_K_M.gguf', bytes: gguf, dropOnce: true },
        { path: 'mmproj-tiny-F16.gguf', bytes: notGguf },
      ],
      'acme/bad-GGUF': [
        { path: 'bad-Q4_K_M.gguf', bytes: corrupt, listedSha256: sha256(gguf) },
        { path: 'text-Q8_0.gguf', bytes: notGguf },
        { path: 'big-Q6_K.gguf', bytes: gguf, oversize: true },
        { path: 'meta-Q5_K_M.gguf', bytes: gguf, redirectTo: 'http://169.254.169.254/latest/meta-data/' },
        { path: 'lan-Q5_K_S.gguf', bytes: gguf, redirectTo: 'https://10.1.2.3/x.gguf' },
      ],
      'acme/evil-GGUF': [{ path: '../../escape-Q4_K_M.gguf', bytes: gguf }],
      'acme/gated-GGUF': [{ path: 'gated-Q8_0.gguf', bytes: gguf }],
    }, { gated: ['acme/gated-GGUF'], token: TOKEN });
  });
  after(async () => {
    await hub.close();
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'ifx-pull-'));
    dir = join(root, 'models');
    settings = { modelsDir: dir, hubUrl: hub.url, token: null, net: { allowedPrivateHosts: ['127.0.0.1'] } };
    hub.requests.length = 0;
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('picks the quant case-insensitively, follows the redirect to the CDN, resumes a cut download with Range, verifies and stores', async () => {
    const events: PullEvent[] = [];
    const model = await pullModel(settings, { ref: 'acme/tiny-GGUF:q4_k_m', onEvent: (e) => events.push(e) });
    expect(model.name).to.equal('acme/tiny-GGUF:q4_k_m');
    expect(model.sha256).to.equal(sha256(gguf));
    expect(model.size).to.equal(gguf.length);
    expect(model.quant).to.equal('Q4_K_M');
    expect(model.architecture).to.equal('llama');
    expect(model.path).to.equal(join(dir, 'blobs', `sha256-${sha256(gguf)}.gguf`));
    expect(readFileSync(model.path).equals(gguf)).to.equal(true);
    expect(readdirSync(join(dir, 'blobs'))).to.deep.equal([`sha256-${sha256(gguf)}.gguf`]); // no partial, no lock left
    // First CDN answer was cut mid-body; the second asked for the rest only.
    const cdn = hub.requests.filter((r) => r.server === 'cdn');
    expect(cdn).to.have.length(2);
    expect(cdn[0]!.range).to.equal(undefined);
    // The resume starts where the bytes that reached the disk end (at most what was sent).
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1]!.range ?? '')?.[1]);
    expect(resumedAt).to.be.greaterThan(0).and.at.most(cdn[0]!.sent);
    expect(cdn[1]!.sent).to.be.lessThan(gguf.length);
    expect(resumedAt + cdn[1]!.sent).to.equal(gguf.length);
    expect(events.map((e) => e.kind)).to.include.members(['resolving', 'resolved', 'attempt', 'progress', 'verifying', 'validating', 'writing', 'done']);
    const attempts = events.filter((e) => e.kind === 'attempt');
    expect(attempts.map((a) => a.kind === 'attempt' && a.offset > 0)).to.deep.equal([false, true]);
    const last = events.filter((e) => e.kind === 'progress').pop();
    expect(last).to.include({ total: gguf.length, completed: gguf.length });
    // The manifest is what list/copy/rm read.
    const store = new ModelStore(dir);
    expect((await store.list()).map((m) => m.name)).to.deep.equal(['acme/tiny-GGUF:q4_k_m']);
  });

  it('without a quant takes Q4_K_M first; a missing quant names what exists; a known blob is not downloaded again', async () => {
    const m = await pullModel(settings, { ref: 'hf.co/acme/tiny-GGUF' });
    expect(m.name).to.equal('hf.co/acme/tiny-GGUF');
    expect(m.quant).to.equal('Q4_K_M');
    const missing = await codeOf(pullModel(settings, { ref: 'acme/tiny-GGUF', quant: 'Q2_K' }));
    expect(missing.code).to.equal('model_not_found');
    expect(missing.message).to.equal('acme/tiny-GGUF has no GGUF for quant Q2_K; available: Q4_K_M, Q8_0');
    hub.requests.length = 0;
    const again = await pullModel(settings, { ref: 'hf://acme/tiny-GGUF/tiny-Q8_0.gguf' });
    expect(again.name).to.equal('acme/tiny-GGUF:tiny-Q8_0');
    expect(hub.requests.filter((r) => r.server === 'cdn')).to.have.length(0);
    expect((await codeOf(pullModel(settings, { ref: 'acme/nope' }))).code).to.equal('model_not_found');
  });

  it('a corrupted file fails its digest and is removed; a non-GGUF fails validation and is removed; --sha256 must agree', async () => {
    const bad = await codeOf(pullModel(settings, { ref: 'acme/bad-GGUF:Q4_K_M' }));
    expect(bad.code).to.equal('digest_mismatch');
    expect(bad.message).to.match(/bad-Q4_K_M\.gguf: sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}; the file was removed/);
    expect(readdirSync(join(dir, 'blobs'))).to.deep.equal([]);
    const text = await codeOf(pullModel(settings, { ref: 'acme/bad-GGUF:Q8_0' }));
    expect(text.code).to.equal('invalid_model_file');
    expect(readdirSync(join(dir, 'blobs'))).to.deep.equal([]);
    const wrong = await codeOf(pullModel(settings, { ref: 'acme/tiny-GGUF:Q8_0', sha256: 'c'.repeat(64) }));
    expect(wrong.code).to.equal('digest_mismatch');
    expect(hub.requests.filter((r) => r.server === 'cdn')).to.have.length(2); // the mismatch downloaded nothing
    // A plain URL is checked against --sha256.
    const url = `${hub.cdnUrl}/blob/${encodeURIComponent('acme/tiny-GGUF')}/tiny-Q8_0.gguf`;
    expect((await codeOf(pullModel(settings, { ref: url, sha256: 'd'.repeat(64) }))).code).to.equal('digest_mismatch');
    const ok = await pullModel(settings, { ref: url, sha256: sha256(gguf), name: 'plain' });
    expect(ok.name).to.equal('plain');
  });

  it('a body longer than listed is refused and removed; redirects to link-local or private hosts are refused', async () => {
    const big = await codeOf(pullModel(settings, { ref: 'acme/bad-GGUF:Q6_K' }));
    expect(big.code).to.equal('download_failed');
    expect(big.message).to.include('sent more than the');
    expect(readdirSync(join(dir, 'blobs'))).to.deep.equal([]);
    const meta = await codeOf(pullModel(settings, { ref: 'acme/bad-GGUF:Q5_K_M' }));
    expect(meta.code).to.equal('download_refused');
    expect(meta.message).to.include('169.254.169.254');
    const lan = await codeOf(pullModel(settings, { ref: 'acme/bad-GGUF:Q5_K_S' }));
    expect(lan.code).to.equal('download_refused');
    expect(lan.message).to.include('10.1.2.3 (private)');
  });

  it('HF_TOKEN goes to the hub origin only, never to the CDN a download redirects to; a gated repository is hub_access_denied', async () => {
    const withToken: PullSettings = { ...settings, token: TOKEN };
    const m = await pullModel(withToken, { ref: 'acme/gated-GGUF:Q8_0' });
    expect(m.sha256).to.equal(sha256(gguf));
    const hubReqs = hub.requests.filter((r) => r.server === 'hub');
    const cdnReqs = hub.requests.filter((r) => r.server === 'cdn');
    // The listing and the resolve URL (which redirected) carried it; the CDN (another port: another origin) did not.
    expect(hubReqs.map((r) => [r.url.replace(/\?.*$/, ''), r.authorization])).to.deep.equal([
      ['/api/models/acme/gated-GGUF/tree/main', `Bearer ${TOKEN}`],
      ['/acme/gated-GGUF/resolve/main/gated-Q8_0.gguf', `Bearer ${TOKEN}`],
    ]);
    expect(cdnReqs).to.have.length(1);
    expect(cdnReqs[0]!.authorization).to.equal(undefined);
    // A URL on another origin than the hub's never gets the token either.
    hub.requests.length = 0;
    await pullModel({ ...withToken, modelsDir: join(root, 'other') }, { ref: `${hub.cdnUrl}/blob/${encodeURIComponent('acme/tiny-GGUF')}/tiny-Q8_0.gguf` });
    expect(hub.requests.map((r) => [r.server, r.authorization])).to.deep.equal([['cdn', undefined]]);

    // Without a token the hub answers 401, with another token 403: both are hub_access_denied, saying what to do.
    const anon = await codeOf(pullModel({ ...settings, modelsDir: join(root, 'anon') }, { ref: 'acme/gated-GGUF:Q8_0' }));
    expect(anon).to.deep.equal({
      code: 'hub_access_denied',
      message: `${hub.url} refused the file listing of acme/gated-GGUF (HTTP 401): it is gated or private (or does not exist); set HF_TOKEN to a hub token with access to it`,
    });
    const wrong = await codeOf(pullModel({ ...settings, modelsDir: join(root, 'wrong'), token: 'hf_other' }, { ref: 'acme/gated-GGUF:Q8_0' }));
    expect(wrong.code).to.equal('hub_access_denied');
    expect(wrong.message).to.contain('(HTTP 403): the token in HF_TOKEN has no access to it');
    // The resolve URL refusing (a file link without the listing) is the same error.
    const file = await codeOf(pullModel({ ...settings, modelsDir: join(root, 'file') }, { ref: `${hub.url}/acme/gated-GGUF/resolve/main/gated-Q8_0.gguf` }));
    expect(file.code).to.equal('hub_access_denied');
    expect(existsSync(join(root, 'anon', 'manifests'))).to.equal(false);
    expect(new InferFluxError('hub_access_denied').status).to.equal(403);
  });

  it('per-hop headers: a caller-supplied Authorization is dropped, the credential is added only on its exact origin', () => {
    const cred = { origin: 'https://hub.example', token: 't' };
    expect(hopHeaders({ accept: 'x', Authorization: 'Bearer leak' }, new URL('https://cdn.example/f'), cred)).to.deep.equal({ accept: 'x' });
    expect(hopHeaders({}, new URL('https://hub.example/a'), cred)).to.deep.equal({ authorization: 'Bearer t' });
    // Another port, scheme or subdomain is another origin.
    for (const u of ['https://hub.example:8443/a', 'http://hub.example/a', 'https://cdn.hub.example/a', 'https://hub.example.evil/a']) {
      expect(hopHeaders({}, new URL(u), cred), u).to.deep.equal({});
    }
    expect(hopHeaders({}, new URL('https://hub.example/a'), { ...cred, token: null })).to.deep.equal({});
  });

  it('loopback is refused unless allow-listed, by address and by name', async () => {
    const refused = await codeOf(pullModel({ ...settings, net: { allowedPrivateHosts: [] } }, { ref: 'acme/tiny-GGUF:Q8_0' }));
    expect(refused.code).to.equal('download_refused');
    expect(refused.message).to.include('plain http to 127.0.0.1');
    expect(hub.requests).to.have.length(0);
    // Over https a loopback address is refused by range too (no connection is made).
    const https = await codeOf(pullModel({ ...settings, hubUrl: hub.url.replace('http:', 'https:'), net: { allowedPrivateHosts: [] } }, { ref: 'acme/tiny-GGUF:Q8_0' }));
    expect(https.message).to.include('127.0.0.1 resolves to 127.0.0.1 (loopback)');
    // `localhost` resolves to loopback: the DNS answer is checked, the name alone is not trusted.
    const byName = await codeOf(pullModel({ ...settings, hubUrl: hub.url.replace('127.0.0.1', 'localhost').replace('http:', 'https:'), net: { allowedPrivateHosts: [] } }, { ref: 'acme/tiny-GGUF:Q8_0' }));
    expect(byName.code).to.equal('download_refused');
    expect(byName.message).to.match(/localhost resolves to (127\.0\.0\.1|::1) \(loopback\)/);
    expect(existsSync(join(dir, 'manifests'))).to.equal(false);
  });

  it('hostile names from the user or the hub are refused and nothing is written outside the directory', async () => {
    const hostile = ['../x/y', '/etc/passwd', 'C:/x', 'acme/../../x', 'hf://acme/r/../../x.gguf', 'hf://acme/r//abs.gguf', 'hf://acme/r/C:\\x.gguf', 'hf://acme/r/\\\\host\\share\\x.gguf', 'ftp://example.com/x.gguf', 'acme/tiny-GGUF:../../x'];
    for (const ref of hostile) expect((await codeOf(pullModel(settings, { ref }))).code, ref).to.equal('invalid_request');
    const evil = await codeOf(pullModel(settings, { ref: 'acme/evil-GGUF' }));
    expect(evil.code).to.equal('invalid_request');
    expect(evil.message).to.include('"../../escape-Q4_K_M.gguf"');
    expect((await codeOf(pullModel(settings, { ref: 'acme/tiny-GGUF:Q8_0', name: '../../x' }))).code).to.equal('invalid_request');
    expect(readdirSync(root)).to.deep.equal(readdirSync(root).filter((f) => f === 'models'));
    expect(existsSync(join(root, 'x'))).to.equal(false);
  });

  it('names, refs and quant labels parse as documented', () => {
    expect(parseModelRef('acme/r:Q4_K_M')).to.deep.include({ kind: 'repo', owner: 'acme', repo: 'r', quant: 'Q4_K_M', name: 'acme/r:Q4_K_M' });
    expect(parseModelRef('hf://acme/r/sub/m-Q8_0.gguf')).to.deep.include({ kind: 'file', file: 'sub/m-Q8_0.gguf', name: 'acme/r:m-Q8_0' });
    expect(parseModelRef('https://h.example/a/b/Model%20X.Q4_0.gguf')).to.deep.include({ kind: 'url', name: 'Model-X.Q4_0' });
    expect(() => parseModelRef('llama3.2')).to.throw(/names no hub repository/);
    expect(checkModelName('a/b:latest')).to.equal('a/b');
    for (const bad of ['..', '../a', 'a/..', '/a', 'C:', 'a\\b', '.hidden', 'a//b', 'a:b:c:']) expect(() => checkModelName(bad), bad).to.throw(InferFluxError);
    expect(quantOf('x/Llama-3.2-1B-Instruct-IQ4_XS.gguf')).to.equal('IQ4_XS');
    expect(quantOf('model.q8_0.gguf')).to.equal('Q8_0');
    expect(() => pickGguf([{ path: 'm-Q4_K_M-00001-of-00002.gguf', size: 1, sha256: null }], 'Q4_K_M', 'a/b')).to.throw(/split GGUF/);
  });

  it('the store copies by manifest and removes the blob with its last name', async () => {
    const m = await pullModel(settings, { ref: 'hf://acme/tiny-GGUF/tiny-Q8_0.gguf', name: 'first' });
    const store = new ModelStore(dir);
    await store.copy('first', 'second:v1');
    expect((await store.list()).map((x) => x.name)).to.deep.equal(['first', 'second:v1']);
    await store.remove('first');
    expect(existsSync(m.path)).to.equal(true);
    await store.remove('second:v1');
    expect(existsSync(m.path)).to.equal(false);
    expect((await codeOf(store.remove('second:v1'))).code).to.equal('model_not_found');
    expect((await codeOf(store.copy('nope', 'x'))).code).to.equal('model_not_found');
    // A stale lock from a dead process does not block the next pull.
    writeFileSync(join(dir, 'blobs', `${sha256(gguf)}.partial.lock`), '999999999');
    expect((await pullModel(settings, { ref: 'acme/tiny-GGUF:Q8_0' })).sha256).to.equal(sha256(gguf));
  });
});
