/**
 * `limits.max_concurrent_requests_per_key` on the real server (tiny model): a key with that many
 * generations in flight gets an OpenAI-shaped 429 for the next one, other keys do not, and the
 * slot comes back when a stream ends or its client leaves.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';

const KEY_1 = 'sk-it-conc-one-0001';
const KEY_2 = 'sk-it-conc-two-0002';

/** A streamed completion long enough to stay in flight while the test looks at it. */
async function openStream(server: RunningServer, key: string, ac: AbortController): Promise<{ res: Response; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'count slowly', max_tokens: 1500, ignore_eos: true, stream: true }),
    signal: ac.signal,
  });
  expect(res.status).to.equal(200);
  const reader = res.body!.getReader();
  await reader.read(); // the stream is open: the request holds its slot
  return { res, reader };
}

async function oneShot(server: RunningServer, key: string): Promise<Response> {
  return fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'hi', max_tokens: 2 }),
  });
}

async function until(what: string, fn: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not within 5 s`);
}

describe('concurrent requests per key (real server)', function () {
  this.timeout(120_000);
  let server: RunningServer;

  before(async () => {
    server = await startServer({
      INFERFLUX_API_KEYS: `${KEY_1}:generate|read@team-a,${KEY_2}:generate|read@team-a`,
      INFERFLUX_MAX_CONCURRENT_REQUESTS_PER_KEY: '2',
    });
  });
  after(async () => {
    await server?.stop();
  });

  it('the third request of a key is 429 while two stream; the slots come back when they end', async () => {
    const a = new AbortController();
    const b = new AbortController();
    const first = await openStream(server, KEY_1, a);
    await openStream(server, KEY_1, b);

    const refused = await oneShot(server, KEY_1);
    expect(refused.status).to.equal(429);
    expect(refused.headers.get('retry-after')).to.equal('1');
    const body = (await refused.json()) as { error: { code: string; type: string; message: string } };
    expect(body.error).to.include({ code: 'too_many_concurrent_requests', type: 'rate_limit_error' });
    expect(body.error.message).to.contain('2 generation request(s) in flight');
    // Reads are not generations, and another key of the same tenant has its own slots.
    expect((await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${KEY_1}` } })).status).to.equal(200);
    expect((await oneShot(server, KEY_2)).status).to.equal(200);

    // A client that leaves gives its slot back.
    a.abort();
    await first.reader.cancel().catch(() => undefined);
    await until('the aborted stream freed its slot', async () => (await oneShot(server, KEY_1)).status === 200);
    b.abort();

    const audit = readFileSync(join(server.dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; status?: number; detail?: string });
    expect(audit.some((e) => e.event === 'denial' && e.status === 429 && e.detail === 'concurrency: 2 in flight (max 2)')).to.equal(true);
  });

  it('a request refused for its body still frees its slot', async () => {
    for (let i = 0; i < 3; i++) {
      const bad = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY_2}`, 'content-type': 'application/json' },
        body: '{"prompt": ',
      });
      expect(bad.status).to.equal(400);
    }
    expect((await oneShot(server, KEY_2)).status).to.equal(200);
  });
});
