/**
 * Two real server processes that share no file, only a real redis-server holding the encrypted
 * policy store (`INFERFLUX_POLICY_REDIS_URL`): an admin change on one replica is in force on the
 * other well within a second (published, not polled), a key created on one works on the other,
 * and neither writes a store file.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startReplicas, type Replicas, type RunningRedis } from '../helpers/redis.js';
import { api, type ApiResponse, type RunningServer } from '../helpers/server.js';

const ADMIN_KEY = 'sk-it-policy-redis-admin-0001';
const PASSPHRASE = 'integration-redis-passphrase-51c2';

const call = (server: RunningServer, method: string, path: string, body?: unknown, key = ADMIN_KEY): Promise<ApiResponse> => api(server, method, path, body, key);

describe('policy store in Redis (two real server processes, no shared file)', function () {
  this.timeout(120_000);
  let replicas: Replicas;
  let redis: RunningRedis;
  let a: RunningServer;
  let b: RunningServer;

  before(async () => {
    // A periodic check once a minute: whatever arrives sooner was published.
    replicas = await startReplicas('policy:\n  watch_interval_seconds: 60\n', (url) => ({
      INFERFLUX_POLICY_REDIS_URL: url,
      INFERFLUX_POLICY_PASSPHRASE: PASSPHRASE,
      INFERCTL_API_KEY: ADMIN_KEY,
    }));
    ({ redis, a, b } = replicas);
  });
  after(async () => {
    await replicas?.stop();
  });

  it('start-up names the Redis store', () => {
    for (const s of [a, b]) expect(s.logs()).to.contain(`policy store ${redis.url} key inferflux:policy:`);
  });

  it('a rate-limit change on one replica is in force on the other at once (published, not polled)', async () => {
    const put = await call(a, 'PUT', '/v1/admin/rate_limit', { requests_per_minute: 777 });
    expect(put.status).to.equal(200);
    const t0 = Date.now();
    let seen = 0;
    while (Date.now() - t0 < 5000) {
      seen = (await call(b, 'GET', '/v1/admin/rate_limit')).body.requests_per_minute as number;
      if (seen === 777) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).to.equal(777);
    expect(Date.now() - t0).to.be.below(2000); // published: the periodic check is a minute away
  });

  it('a key created on one replica authenticates on the other; revoked there, it fails on the first', async () => {
    const created = await call(a, 'POST', '/v1/admin/api_keys', { scopes: ['read'], tenant: 'team-r' });
    expect(created.status).to.equal(201);
    const key = created.body.key as string;
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await call(b, 'GET', '/v1/models', undefined, key)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).to.equal(200);
    expect((await call(b, 'DELETE', `/v1/admin/api_keys/${created.body.id as string}`)).status).to.equal(200);
    for (let i = 0; i < 100 && status !== 401; i++) {
      status = (await call(a, 'GET', '/v1/models', undefined, key)).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).to.equal(401);
  });

  it('writes no store file', () => {
    for (const s of [a, b]) expect(existsSync(join(s.dir, 'config', 'policy_store.conf'))).to.equal(false);
  });
});
