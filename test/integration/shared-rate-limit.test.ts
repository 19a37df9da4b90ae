/**
 * Rate limits shared by two real server processes through a real redis-server
 * (`rate_limit.redis_url`): a tenant's requests and a key's tokens are limited across both
 * replicas, refusals are OpenAI-shaped 429s with Retry-After, and a Redis that goes away leaves
 * every replica serving on its own buckets (fail mode `local`), counted in the metrics.
 */
import { expect } from 'chai';
import { startReplicas, type Replicas, type RunningRedis } from '../helpers/redis.js';
import { metric, type RunningServer } from '../helpers/server.js';

const KEY_A1 = 'sk-it-shared-a1-0001';
const KEY_A2 = 'sk-it-shared-a2-0002';
const KEY_B = 'sk-it-shared-b-0003';

async function get(server: RunningServer, key: string): Promise<Response> {
  return fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
}

describe('rate limits shared through Redis (two real server processes)', function () {
  this.timeout(120_000);
  let replicas: Replicas;
  let redis: RunningRedis;
  let a: RunningServer;
  let b: RunningServer;

  before(async () => {
    const yaml = ['rate_limit:', '  tenant_requests_per_minute: 4', '  tokens_per_minute: 60', `  redis_prefix: "it${process.pid}:"`, ''].join('\n');
    replicas = await startReplicas(yaml, (url) => ({
      INFERFLUX_API_KEYS: `${KEY_A1}:generate|read@team-a,${KEY_A2}:generate|read@team-a,${KEY_B}:generate|read@team-b`,
      INFERFLUX_RATE_LIMIT_REDIS_URL: url,
    }));
    ({ redis, a, b } = replicas);
  });
  after(async () => {
    await replicas?.stop();
  });

  it('start-up names the shared limiter', () => {
    for (const s of [a, b]) expect(s.logs()).to.contain(`rate limits: shared through Redis at ${redis.url}`);
  });

  it("a tenant's request limit holds across both replicas and both of its keys", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(i % 2 === 0 ? a : b, i < 2 ? KEY_A1 : KEY_A2)).status);
    expect(statuses).to.deep.equal([200, 200, 200, 200]);
    const refused = await get(b, KEY_A1);
    expect(refused.status).to.equal(429);
    expect(Number(refused.headers.get('retry-after'))).to.be.within(14, 15); // 1 request in 15 s at 4/min
    const body = (await refused.json()) as { error: { code: string; type: string; message: string } };
    expect(body.error).to.include({ code: 'rate_limited', type: 'rate_limit_error' });
    expect(body.error.message).to.contain('tenant team-a: 4 requests per minute');
    // The other tenant is untouched.
    expect((await get(a, KEY_B)).status).to.equal(200);
  });

  it("tokens used through one replica count against the key on the other", async () => {
    // ~80 prompt tokens against 60 per minute: the next request of this key is refused anywhere.
    const prompt = Array.from({ length: 80 }, (_, i) => `w${i}`).join(' ');
    const first = await fetch(`${a.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY_B}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: 1 }),
    });
    expect(first.status).to.equal(200);
    const usage = ((await first.json()) as { usage: { total_tokens: number } }).usage;
    expect(usage.total_tokens).to.be.above(60);
    let refused: Response | undefined;
    for (let i = 0; i < 20; i++) {
      const r = await get(b, KEY_B);
      if (r.status === 429) {
        refused = r;
        break;
      }
      await new Promise((res) => setTimeout(res, 50)); // the charge is sent after the response
    }
    expect(refused, 'the key was refused on the other replica').to.not.equal(undefined);
    expect(((await refused!.json()) as { error: { message: string } }).error.message).to.contain('this key: 60 tokens per minute');
  });

  it('with Redis gone, each replica serves on its own buckets and counts the failures', async () => {
    await redis.stop();
    const r = await get(a, KEY_A2); // team-a is out in Redis, but the local buckets of A are fresh
    expect(r.status).to.equal(200);
    expect(await metric(a.url, 'inferflux_rate_limit_backend_seconds_count{op="admit",outcome="error"}')).to.be.at.least(1);
    expect(await metric(a.url, 'inferflux_rate_limit_backend_seconds_count{op="admit",outcome="ok"}')).to.be.at.least(3);
  });
});
