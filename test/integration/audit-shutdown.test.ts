/**
 * Audit durability across SIGTERM: N requests against the real server, SIGTERM while some are
 * still running, and the audit log holds exactly N completion lines (one per request id), on an
 * intact hash chain.
 */
import { expect } from 'chai';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { verifyAuditPaths } from '../../src/cli/audit-verify.js';
import { startServer } from '../helpers/server.js';

describe('audit log on SIGTERM', function () {
  this.timeout(180_000);

  it('N requests, SIGTERM mid-flight: exactly N completion lines, chain intact', async () => {
    const server = await startServer();
    const n = 24;
    let answered = 0;
    let signalled!: () => void;
    const halfDone = new Promise<void>((r) => (signalled = r));
    const requests = Array.from({ length: n }, async (_, i) => {
      const res = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': `shutdown-${i}` },
        body: JSON.stringify({ messages: [{ role: 'user', content: `hello ${i}` }], max_tokens: 8, stream: i % 2 === 0 }),
      });
      await res.text();
      if (++answered === n / 2) signalled();
      return { status: res.status, id: res.headers.get('x-request-id') };
    });
    await halfDone;
    const code = await server.stop({ keepDir: true });
    const results = await Promise.all(requests);
    try {
      expect(code).to.equal(0);
      expect(results.map((r) => r.status)).to.deep.equal(Array(n).fill(200));
      const log = join(server.dir, 'audit.log');
      const lines = readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { event: string; requestId?: string; status?: number });
      const completions = lines.filter((l) => l.event === 'completion');
      expect(completions).to.have.length(n);
      expect(completions.map((l) => l.requestId).sort()).to.deep.equal(results.map((r) => r.id).sort());
      const [report] = await verifyAuditPaths([log]);
      expect(report).to.deep.include({ ok: true, start: 'genesis' });
      // The checkpoint names the last line: nothing was cut off the end either.
      expect(report!.checkpoint?.seq).to.equal(lines.length - 1);
    } finally {
      rmSync(server.dir, { recursive: true, force: true });
    }
  });
});
