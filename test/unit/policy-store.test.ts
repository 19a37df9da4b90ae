/**
 * Policy store: envelope crypto, tamper detection, atomic writes (including a writer killed
 * mid-loop), cross-replica conflict refusal, watching, and the initial-document merge rule.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InferFluxError } from '../../src/errors.js';
import { PolicyStoreError } from '../../src/policy/store/envelope.js';
import { emptyDefaults, initialPolicy } from '../../src/policy/store/initial-policy.js';
import { openPolicyStore } from '../../src/policy/store/policy-store.js';
import type { ApiKeyRecord, PolicyDocument } from '../../src/policy/types.js';

const PASS = 'correct horse battery staple';
const RAW_KEY = 'ifx-raw-secret-key-value-0123456789';

function key(raw: string, origin: ApiKeyRecord['origin'] = 'store', extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  const hash = createHash('sha256').update(raw).digest('hex');
  return { hash, id: `key:${hash.slice(0, 12)}`, scopes: ['generate'], tenant: 'acme', createdAt: new Date(0).toISOString(), origin, ...extra };
}

function makeDoc(version: number, extra: Partial<PolicyDocument> = {}): PolicyDocument {
  return { ...emptyDefaults(), version, updatedAt: new Date(0).toISOString(), apiKeys: [key(RAW_KEY)], ...extra };
}

async function expectStoreError(p: Promise<unknown>, reason: PolicyStoreError['reason'], file: string): Promise<PolicyStoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(PolicyStoreError);
    expect((err as PolicyStoreError).reason).to.equal(reason);
    expect((err as Error).message).to.contain(file);
    return err as PolicyStoreError;
  }
  throw new Error(`expected a PolicyStoreError (${reason})`);
}

describe('policy store', function () {
  this.timeout(30_000);
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ifx-store-'));
    file = join(dir, 'sub', 'policy_store.conf');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('load() is null without a file', async () => {
    expect(await openPolicyStore({ path: file, passphrase: PASS }).load()).to.equal(null);
  });

  it('round-trips an encrypted document; no secret, hash or passphrase in the file', async () => {
    const store = openPolicyStore({ path: file, passphrase: PASS });
    const doc = makeDoc(1, { guardrails: { ...emptyDefaults().guardrails, blocklist: ['classified-term'] } });
    await store.save(doc);
    expect(await store.load()).to.deep.equal(doc);
    const text = await readFile(file, 'utf8');
    for (const s of [RAW_KEY, PASS, doc.apiKeys[0]!.hash, 'classified-term', 'acme']) expect(text).not.to.contain(s);
    const env = JSON.parse(text) as Record<string, unknown>;
    expect(env).to.include({ format: 'inferflux-policy-store', version: 1, cipher: 'aes-256-gcm' });
    expect(env.kdf).to.include({ name: 'scrypt', N: 32768, r: 8, p: 1 });
    // A fresh replica (no cached key) reads it too.
    expect(await openPolicyStore({ path: file, passphrase: PASS }).load()).to.deep.equal(doc);
  });

  it('uses a fresh nonce per write and keeps the per-file salt', async () => {
    const store = openPolicyStore({ path: file, passphrase: PASS });
    await store.save(makeDoc(1));
    const a = JSON.parse(await readFile(file, 'utf8')) as { nonce: string; kdf: { salt: string } };
    await store.save(makeDoc(2));
    const b = JSON.parse(await readFile(file, 'utf8')) as { nonce: string; kdf: { salt: string } };
    expect(b.nonce).not.to.equal(a.nonce);
    expect(b.kdf.salt).to.equal(a.kdf.salt);
    expect(Buffer.from(a.kdf.salt, 'base64')).to.have.length(16);
    expect(Buffer.from(a.nonce, 'base64')).to.have.length(12);
  });

  it('tells a damaged file (header, tag, ciphertext, truncation) from a wrong passphrase', async () => {
    await openPolicyStore({ path: file, passphrase: PASS }).save(makeDoc(1));
    const text = await readFile(file, 'utf8');
    const original = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(original)).to.include.members(['keycheck', 'headercheck']);
    const flip = (b64: string) => {
      const buf = Buffer.from(b64, 'base64');
      buf[buf.length >> 1] ^= 1;
      return buf.toString('base64');
    };
    const damaged: Record<string, Record<string, unknown>> = {
      ciphertext: { ...original, ciphertext: flip(original.ciphertext as string) },
      tag: { ...original, tag: flip(original.tag as string) },
      nonce: { ...original, nonce: flip(original.nonce as string) },
      salt: { ...original, kdf: { ...(original.kdf as object), salt: flip((original.kdf as { salt: string }).salt) } },
      keycheck: { ...original, keycheck: flip(original.keycheck as string) },
      'kdf params': { ...original, kdf: { ...(original.kdf as object), N: 2 ** 30 } },
      'ciphertext not base64': { ...original, ciphertext: `${(original.ciphertext as string).slice(0, 8)}!${(original.ciphertext as string).slice(9)}` },
      'ciphertext cut short': { ...original, ciphertext: (original.ciphertext as string).slice(0, 24) },
    };
    for (const [what, v] of Object.entries(damaged)) {
      await writeFile(file, JSON.stringify(v));
      const err = await expectStoreError(openPolicyStore({ path: file, passphrase: PASS }).load(), 'corrupted', file);
      expect(err.message, what).to.match(/damaged/);
      expect(err.message, what).to.not.match(/wrong INFERFLUX_POLICY_PASSPHRASE/);
    }
    await writeFile(file, text.slice(0, text.length >> 1));
    expect((await expectStoreError(openPolicyStore({ path: file, passphrase: PASS }).load(), 'malformed', file)).message).to.match(/truncated/);
    await writeFile(file, '');
    expect((await expectStoreError(openPolicyStore({ path: file, passphrase: PASS }).load(), 'malformed', file)).message).to.match(/empty/);
    await writeFile(file, text);
    const wrong = await expectStoreError(openPolicyStore({ path: file, passphrase: 'wrong' }).load(), 'wrong_passphrase', file);
    expect(wrong.message).to.match(/wrong INFERFLUX_POLICY_PASSPHRASE/);
    expect(await openPolicyStore({ path: file, passphrase: PASS }).load()).to.deep.equal(makeDoc(1));
  });

  it('a file from before the key and header checks still opens, and failures say "wrong passphrase or damaged"', async () => {
    await openPolicyStore({ path: file, passphrase: PASS }).save(makeDoc(1));
    const { keycheck: _k, headercheck: _h, ...legacy } = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify(legacy));
    expect(await openPolicyStore({ path: file, passphrase: PASS }).load()).to.deep.equal(makeDoc(1));
    const err = await expectStoreError(openPolicyStore({ path: file, passphrase: 'wrong' }).load(), 'authentication_failed', file);
    expect(err.message).to.contain('wrong INFERFLUX_POLICY_PASSPHRASE or a damaged file');
    await writeFile(file, JSON.stringify({ ...legacy, kdf: { ...(legacy.kdf as object), N: 2 ** 30 } }));
    await expectStoreError(openPolicyStore({ path: file, passphrase: PASS }).load(), 'unsupported', file); // bounded before any derivation
  });

  it('refuses to save over a file it cannot read (never silently resets)', async () => {
    await openPolicyStore({ path: file, passphrase: PASS }).save(makeDoc(1));
    await expectStoreError(openPolicyStore({ path: file, passphrase: 'wrong' }).save(makeDoc(2)), 'wrong_passphrase', file);
    expect(await openPolicyStore({ path: file, passphrase: PASS }).load()).to.deep.equal(makeDoc(1));
  });

  it('needs the passphrase for an encrypted file and refuses a plaintext file when one is set', async () => {
    await openPolicyStore({ path: file, passphrase: PASS }).save(makeDoc(1));
    await expectStoreError(openPolicyStore({ path: file }).load(), 'passphrase_required', file);
    await rm(file);
    await openPolicyStore({ path: file }).save(makeDoc(1));
    await expectStoreError(openPolicyStore({ path: file, passphrase: PASS }).load(), 'plaintext_refused', file);
  });

  it('plaintext mode stores JSON with hashes only, and validates what it reads', async () => {
    const store = openPolicyStore({ path: file });
    await store.save(makeDoc(3));
    const text = await readFile(file, 'utf8');
    expect(text).not.to.contain(RAW_KEY);
    expect(JSON.parse(text)).to.include({ cipher: 'none' });
    expect(await store.load()).to.deep.equal(makeDoc(3));
    const bad = JSON.parse(text) as { document: { apiKeys: { scopes: string[] }[] } };
    bad.document.apiKeys[0]!.scopes = ['root'];
    await writeFile(file, JSON.stringify(bad));
    const err = await expectStoreError(store.load(), 'invalid_document', file);
    expect(err.message).to.contain('/apiKeys/0/scopes/0');
    await writeFile(file, '{"format":"inferflux-policy-store","ver');
    await expectStoreError(store.load(), 'malformed', file);
  });

  it('persists only store keys: config/env keys stay with each replica', async () => {
    const store = openPolicyStore({ path: file, passphrase: PASS });
    await store.save(makeDoc(1, { apiKeys: [key('from-config', 'config'), key('from-env', 'env'), key(RAW_KEY)] }));
    expect((await store.load())!.apiKeys.map((k) => k.origin)).to.deep.equal(['store']);
  });

  it('refuses a version that is not newer than the file (two replicas, same version)', async () => {
    const a = openPolicyStore({ path: file, passphrase: PASS });
    const b = openPolicyStore({ path: file, passphrase: PASS });
    await a.save(makeDoc(4));
    try {
      await b.save(makeDoc(4, { apiKeys: [] }));
      expect.fail('expected policy_conflict');
    } catch (err) {
      expect(err).to.be.instanceOf(InferFluxError);
      expect((err as InferFluxError).code).to.equal('policy_conflict');
    }
    expect((await b.load())!.apiKeys).to.have.length(1);
  });

  it('ignores stray and truncated temp files and stale locks of a crashed writer', async () => {
    const store = openPolicyStore({ path: file, passphrase: PASS });
    await store.save(makeDoc(1));
    const sub = join(dir, 'sub');
    await writeFile(join(sub, '.policy_store.conf.999.aaaaaa.tmp'), (await readFile(file, 'utf8')).slice(0, 40));
    await writeFile(join(sub, '.policy_store.conf.999.bbbbbb.tmp'), '');
    expect(await openPolicyStore({ path: file, passphrase: PASS }).load()).to.deep.equal(makeDoc(1));
    // A lock left by a dead writer is taken over once stale (simulated by an old mtime).
    const { utimes } = await import('node:fs/promises');
    await writeFile(`${file}.lock`, '999\n');
    const old = new Date(Date.now() - 60_000);
    await utimes(`${file}.lock`, old, old);
    await store.save(makeDoc(2));
    expect((await store.load())!.version).to.equal(2);
  });

  it('a writer killed mid-loop never leaves a corrupt store', async function () {
    const dist = fileURLToPath(new URL('../../dist/policy/store/policy-store.js', import.meta.url));
    if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`npm run build\` first`);
    const script = `
      import { openPolicyStore } from ${JSON.stringify(dist)};
      const store = openPolicyStore({ path: ${JSON.stringify(file)}, passphrase: ${JSON.stringify(PASS)} });
      let v = (await store.load())?.version ?? 0;
      const base = ${JSON.stringify(makeDoc(0))};
      const save = () => store.save({ ...base, version: ++v, guardrails: { ...base.guardrails, blocklist: ['x'.repeat(v % 5000)] } });
      await save();
      process.stdout.write('ready\\n');
      for (;;) await save();
    `;
    let lastVersion = 0;
    for (let round = 0; round < 4; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      // A writer that cannot take the lock left by the last one exits: fail with its error, not a timeout.
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`round ${round}: the writer exited ${code} before its first save: ${stderr}`)));
      });
      await new Promise((r) => setTimeout(r, 150 + round * 70));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const doc = await openPolicyStore({ path: file, passphrase: PASS }).load();
      expect(doc).to.not.equal(null);
      expect(doc!.version).to.be.greaterThan(lastVersion);
      lastVersion = doc!.version;
      // A SIGKILLed writer may have held the lock: the next load and save must not need it removed.
    }
    expect(lastVersion).to.be.greaterThan(4);
    // Whatever temp files the kills left behind, the directory holds the store and nothing it reads.
    expect((await readdir(join(dir, 'sub'))).filter((n) => !n.endsWith('.tmp'))).to.include('policy_store.conf');
  });

  it('watch() delivers newer documents written by another replica, once each', async () => {
    const writer = openPolicyStore({ path: file, passphrase: PASS });
    await writer.save(makeDoc(1));
    const reader = openPolicyStore({ path: file, passphrase: PASS, watchIntervalMs: 200 });
    const seen: number[] = [];
    const stop = reader.watch((d) => seen.push(d.version));
    const until = async (n: number) => {
      for (let i = 0; i < 500 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 20));
    };
    await until(1);
    const started = Date.now();
    await writer.save(makeDoc(2));
    await until(2);
    // The file watch usually reports it within tens of ms; the bound leaves room for a loaded machine.
    expect(Date.now() - started).to.be.lessThan(5000);
    await new Promise((r) => setTimeout(r, 400));
    expect(seen).to.deep.equal([1, 2]);
    // A bad write is reported, not delivered, and the next good one still is.
    await writeFile(file, 'garbage');
    await new Promise((r) => setTimeout(r, 300));
    await rm(file);
    await writer.save(makeDoc(3));
    await until(3);
    expect(seen).to.deep.equal([1, 2, 3]);
    stop();
    await reader.close();
  });
});

describe('initialPolicy', () => {
  const defaults = () => ({
    ...emptyDefaults(),
    apiKeys: [key('cfg', 'config', { scopes: ['admin'] }), key('envk', 'env')],
    rateLimit: { requestsPerMinute: 60, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0 },
  });

  it('without a store: the config, version 0', () => {
    const doc = initialPolicy(defaults(), null, new Date(0));
    expect(doc).to.deep.equal({ ...defaults(), version: 0, updatedAt: new Date(0).toISOString() });
  });

  it('merges store keys after config keys; a configured hash wins; stored config keys are dropped', () => {
    const stored = makeDoc(7, {
      apiKeys: [key('s1'), key('cfg', 'store', { scopes: ['read'] }), key('old-config', 'config')],
    });
    const doc = initialPolicy(defaults(), stored);
    expect(doc.version).to.equal(7);
    expect(doc.apiKeys.map((k) => [k.id, k.origin, k.scopes.join()])).to.deep.equal([
      [key('cfg').id, 'config', 'admin'],
      [key('envk').id, 'env', 'generate'],
      [key('s1').id, 'store', 'generate'],
    ]);
  });

  it('sections follow the config until an admin changed them; then the stored section wins', () => {
    const storedRate = { requestsPerMinute: 5, tokensPerMinute: 5, tenantRequestsPerMinute: 5, tenantTokensPerMinute: 5 };
    const untouched = makeDoc(2, { rateLimit: storedRate });
    expect(initialPolicy(defaults(), untouched).rateLimit.requestsPerMinute).to.equal(60);
    const changed = makeDoc(3, { rateLimit: storedRate, overrides: { rateLimit: new Date(0).toISOString() } });
    const doc = initialPolicy(defaults(), changed);
    expect(doc.rateLimit).to.deep.equal(storedRate);
    expect(doc.guardrails).to.deep.equal(defaults().guardrails);
    expect(doc.overrides).to.deep.equal({ rateLimit: new Date(0).toISOString() });
  });
});
