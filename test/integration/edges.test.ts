/**
 * The HTTP edge against the real server: what a client gets at each limit (queue, host, nesting,
 * headers, idle connections), every answer in OpenAI's error shape.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';

describe('queue_full on the real server', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-edges-'));
    const cfg = join(dir, 'server.yaml');
    // One sequence and no queue: a second request while one runs is refused at once.
    writeFileSync(cfg, 'runtime:\n  sequences_per_worker: 1\n  threads_per_worker: 1\nscheduler:\n  decode_pool_size: 1\n  max_queue: 0\n');
    server = await startServer({ INFERFLUX_CONFIG: cfg });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a non-streaming request refused by the scheduler gets 429 queue_full with Retry-After', async () => {
    const busy = new AbortController();
    const first = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Keep the only sequence busy', max_tokens: 2000, ignore_eos: true, stream: true }),
      signal: busy.signal,
    });
    expect(first.status).to.equal(200);
    const reader = first.body!.getReader();
    await reader.read(); // generating now: the one sequence is taken
    try {
      const res = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x', max_tokens: 4 }),
      });
      const body = (await res.json()) as { error: { code: string; type: string; param: string | null; message: string } };
      expect(res.status).to.equal(429);
      expect(res.headers.get('retry-after')).to.equal('1');
      expect(body.error).to.deep.equal({ code: 'queue_full', type: 'rate_limit_error', param: null, message: "The queue for model 'tiny-seed0' is full." });
    } finally {
      busy.abort();
      await reader.cancel().catch(() => undefined);
    }
  });
});
