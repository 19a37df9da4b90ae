/**
 * `server.log_sampling` on the real server: with an overall rate of 0 and one tenant at 1, the
 * access lines of the other tenant's successes are left out (and counted), that tenant's errors and
 * every line of the sampled-in tenant are written.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const LOUD = 'sk-it-logs-loud-0001';
const QUIET = 'sk-it-logs-quiet-0002';

interface AccessLine {
  msg: string;
  req_id: string;
  status: number;
  tenant?: string;
}

function accessLines(server: RunningServer): AccessLine[] {
  return server
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as AccessLine & { component?: string })
    .filter((l) => l.component === 'http' && l.msg === 'request');
}

async function complete(server: RunningServer, key: string, id: string, model = 'tiny-seed0'): Promise<number> {
  const r = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ model, prompt: 'hello', max_tokens: 2 }),
  });
  await r.arrayBuffer();
  return r.status;
}

describe('access-log sampling per tenant (real server)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-logs-'));
    const cfg = join(dir, 'server.yaml');
    writeFileSync(cfg, 'server:\n  log_format: json\n  log_sampling:\n    rate: 0\n    tenants:\n      loud: 1\n');
    server = await startServer({ INFERFLUX_CONFIG: cfg, INFERFLUX_API_KEYS: `${LOUD}:generate|read@loud,${QUIET}:generate|read@quiet` });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes the sampled-in tenant's lines and every error, leaves out the rest and counts them", async () => {
    const before = await metric(server.url, 'inferflux_log_lines_sampled_out_total{tenant="quiet"}');
    for (let i = 0; i < 3; i++) {
      expect(await complete(server, LOUD, `loud-${i}`)).to.equal(200);
      expect(await complete(server, QUIET, `quiet-${i}`)).to.equal(200);
    }
    expect(await complete(server, QUIET, 'quiet-error', 'no-such-model')).to.equal(404);
    // The access line is written when the response ends; give the last one a moment.
    await new Promise((r) => setTimeout(r, 200));
    const ids = accessLines(server).map((l) => l.req_id);
    expect(ids).to.include.members(['loud-0', 'loud-1', 'loud-2', 'quiet-error']);
    expect(ids.filter((id) => id.startsWith('quiet-') && id !== 'quiet-error')).to.deep.equal([]);
    expect(accessLines(server).find((l) => l.req_id === 'quiet-error')).to.include({ status: 404, tenant: 'quiet' });
    expect(await metric(server.url, 'inferflux_log_lines_sampled_out_total{tenant="quiet"}')).to.equal(before + 3);
  });
});
