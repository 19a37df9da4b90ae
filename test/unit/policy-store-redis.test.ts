/**
 * The policy store in a real redis-server (`policy.redis_url`): encrypted round trip with nothing
 * secret in Redis, conflict refusal between two replicas, change propagation by publish and by
 * the periodic check, tamper detection, 503 on a write while Redis is away, and a start that
 * fails rather than serve without the stored policy.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { InferFluxError } from '../../src/errors.js';
import { PolicyStoreError } from '../../src/policy/store/envelope.js';
import { emptyDefaults } from '../../src/policy/store/initial-policy.js';
import { openPolicyStore, type PolicyStore } from '../../src/policy/store/policy-store.js';
import { startPolicy } from '../../src/policy/store/start-policy.js';
import type { ApiKeyRecord, PolicyDocument } from '../../src/policy/types.js';
import { startRedis, type RunningRedis } from '../helpers/redis.js';

const PASS = 'correct horse battery staple';
const RAW_KEY = 'ifx-raw-secret-key-value-0123456789';

function key(raw: string, origin: ApiKeyRecord['origin'] = 'store'): ApiKeyRecord {
  const hash = createHash('sha256').update(raw).digest('hex');
  return { hash, id: `key:${hash.slice(0, 12)}`, scopes: ['generate'], tenant: 'acme', createdAt: new Date(0).toISOString(), origin };
}

function makeDoc(version: number, extra: Partial<PolicyDocument> = {}): PolicyDocument {
  return { ...emptyDefaults(), version, updatedAt: new Date(0).toISOString(), apiKeys: [key(RAW_KEY)], ...extra };
}

describe('policy store in Redis (real redis-server)', function () {
  this.timeout(30_000);
  let redis: RunningRedis;
  let raw: Redis;
  let n = 0;
  let storeKey: string;
  const open: PolicyStore[] = [];
  const store = (opts: { passphrase?: string | null; watchIntervalMs?: number; log?: (m: string) => void } = {}): PolicyStore => {
    const s = openPolicyStore({ path: '/unused', redisUrl: redis.url, redisKey: storeKey, passphrase: PASS, ...opts });
    open.push(s);
    return s;
  };

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  beforeEach(() => {
    storeKey = `it:policy:${++n}`;
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  after(async () => {
    raw?.disconnect();
    await redis?.stop();
  });

  it('round-trips an encrypted document; Redis holds no key, hash, passphrase or plain term', async () => {
    const s = store();
    expect(await s.load()).to.equal(null);
    const doc = makeDoc(1, { apiKeys: [key(RAW_KEY), key('config-key', 'config')], guardrails: { ...emptyDefaults().guardrails, blocklist: ['classified-term'] } });
    await s.save(doc);
    // Config keys belong to each replica's config: only store keys are stored.
    expect(await store().load()).to.deep.equal({ ...doc, apiKeys: [key(RAW_KEY)] });
    const stored = await raw.hgetall(storeKey);
    expect(stored.v).to.equal('1');
    const everything = JSON.stringify(stored);
    for (const secret of [RAW_KEY, key(RAW_KEY).hash, PASS, 'classified-term']) expect(everything).to.not.contain(secret);
    expect(JSON.parse(stored.doc!).cipher).to.equal('aes-256-gcm');
  });

  it('refuses a version that is not newer (two replicas writing version 2: one wins)', async () => {
    const a = store();
    const b = store();
    await a.save(makeDoc(1));
    const results = await Promise.allSettled([a.save(makeDoc(2, { updatedAt: 'a' })), b.save(makeDoc(2, { updatedAt: 'b' }))]);
    expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).to.be.instanceOf(InferFluxError);
    expect((lost.reason as InferFluxError).code).to.equal('policy_conflict');
    await expectConflict(a.save(makeDoc(1)));
  });

  it('a write reaches another replica by publish, not by the periodic check', async () => {
    const writer = store();
    const reader = store({ watchIntervalMs: 60_000 }); // only the publish can deliver it in time
    const seen: PolicyDocument[] = [];
    reader.watch((d) => seen.push(d));
    await new Promise((r) => setTimeout(r, 200)); // subscribed
    await writer.save(makeDoc(1, { rateLimit: { ...emptyDefaults().rateLimit, requestsPerMinute: 42 } }));
    // From here: the publish, the reader's read and its decryption (one scrypt derivation).
    const t0 = performance.now();
    while (seen.length === 0 && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    expect(seen.map((d) => d.rateLimit.requestsPerMinute)).to.deep.equal([42]);
    expect(performance.now() - t0).to.be.below(2000); // the next periodic check is 60 s away
  });

  it('the periodic check finds a write whose publish was missed', async () => {
    const reader = store({ watchIntervalMs: 100 });
    const seen: number[] = [];
    reader.watch((d) => seen.push(d.version));
    // A real envelope written under another key, then set here without a publish (as if this
    // replica was disconnected when it was announced).
    const elsewhere = `${storeKey}:elsewhere`;
    const source = openPolicyStore({ path: '/unused', redisUrl: redis.url, redisKey: elsewhere, passphrase: PASS });
    open.push(source);
    await source.save(makeDoc(1));
    await raw.hset(storeKey, 'v', '1', 'doc', (await raw.hget(elsewhere, 'doc'))!);
    const until = Date.now() + 2000;
    while (seen.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(seen).to.deep.equal([1]);
  });

  it('a tampered envelope is refused by load and kept out by watch', async () => {
    const s = store();
    await s.save(makeDoc(1));
    const env = JSON.parse((await raw.hget(storeKey, 'doc'))!) as { ciphertext: string };
    const flipped = Buffer.from(env.ciphertext, 'base64');
    flipped[0] = flipped[0]! ^ 1;
    await raw.hset(storeKey, 'v', '2', 'doc', JSON.stringify({ ...env, ciphertext: flipped.toString('base64') }));
    try {
      await store().load();
      expect.fail('load accepted a tampered store');
    } catch (err) {
      expect(err).to.be.instanceOf(PolicyStoreError);
      expect((err as PolicyStoreError).reason).to.equal('corrupted');
      expect((err as Error).message).to.contain(`key ${storeKey}`);
    }
    const logs: string[] = [];
    const seen: PolicyDocument[] = [];
    store({ log: (m) => logs.push(m), watchIntervalMs: 50 }).watch((d) => seen.push(d));
    // The watch derives the key (scrypt) before it can find the envelope tampered: on a loaded
    // machine that takes longer than any fixed sleep, so wait for its report (bounded), then for
    // a few more checks that must neither report again nor deliver anything.
    for (const deadline = Date.now() + 10_000; logs.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).to.deep.equal([]);
    expect(logs).to.have.length(1);
    expect(logs[0]).to.match(/keeping the current policy/);
  });

  it('a write while Redis is away is 503 policy_store_unavailable, and a later one succeeds', async () => {
    const own = await startRedis();
    const s = openPolicyStore({ path: '/unused', redisUrl: own.url, redisKey: storeKey, passphrase: PASS });
    open.push(s);
    await s.save(makeDoc(1));
    const port = own.port;
    await own.stop();
    try {
      await s.save(makeDoc(2));
      expect.fail('saved without Redis');
    } catch (err) {
      expect(err).to.be.instanceOf(InferFluxError);
      expect(err as InferFluxError).to.include({ code: 'policy_store_unavailable', status: 503 });
    }
    const back = await startRedis(port); // empty: no persistence in this test
    try {
      let saved = false;
      for (let i = 0; i < 50 && !saved; i++) {
        saved = await s.save(makeDoc(2)).then(() => true, () => false);
        if (!saved) await new Promise((r) => setTimeout(r, 100));
      }
      expect(saved, 'saved once Redis was back').to.equal(true);
    } finally {
      await s.close();
      await back.stop();
    }
  });

  it('start-up fails, naming the store, when Redis cannot be reached', async () => {
    const t0 = Date.now();
    try {
      await startPolicy({
        store: { storePath: '/unused', redisUrl: 'redis://127.0.0.1:1', redisKey: 'inferflux:policy', watchIntervalSeconds: 5 },
        passphrase: PASS,
        defaults: emptyDefaults(),
        log: Object.assign(() => undefined, { warn: () => undefined, error: () => undefined }),
      });
      expect.fail('started without the stored policy');
    } catch (err) {
      expect(err).to.be.instanceOf(PolicyStoreError);
      expect((err as Error).message).to.match(/^policy store redis:\/\/127\.0\.0\.1:1 key inferflux:policy: cannot read/);
    }
    expect(Date.now() - t0).to.be.below(10_000);
  });
});

async function expectConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as InferFluxError).code).to.equal('policy_conflict');
    return;
  }
  throw new Error('expected policy_conflict');
}
