/**
 * Audit durability across `kill -9`: under a steady load, the server is killed without warning.
 * Lines are written in batches of `audit.flush_interval_ms` and acknowledged after fsync, so the
 * only answered requests allowed to be missing from the log are those answered in the last batch
 * window (plus the write + fsync in flight). The test measures how many were lost and how old the
 * oldest lost answer was, then restarts the server on the same log: the writer cuts any torn
 * line, and the chain and its checkpoint verify.
 */
import { expect } from 'chai';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { verifyAuditPaths } from '../../src/cli/audit-verify.js';
import { startServer } from '../helpers/server.js';

const FLUSH_MS = 250;
/** Time a batch may take beyond its window on a busy 2-core machine (write + fsync + thread hops). */
const SLACK_MS = 750;

describe('audit log on kill -9', function () {
  this.timeout(180_000);

  it(`loses at most the lines of the last ${FLUSH_MS} ms batch, and the chain verifies after a restart`, async () => {
    const env = { INFERFLUX_AUDIT_FLUSH_INTERVAL_MS: String(FLUSH_MS), INFERFLUX_SUPERVISE: '0' };
    const server = await startServer(env);
    const answered = new Map<string, number>();
    let stop = false;
    let n = 0;
    const client = async (): Promise<void> => {
      while (!stop) {
        const id = `kill-${n++}`;
        try {
          const res = await fetch(`${server.url}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-request-id': id },
            body: JSON.stringify({ prompt: `count ${id}`, max_tokens: 2 }),
          });
          await res.text();
          if (res.status === 200) answered.set(id, performance.now());
        } catch {
          return; // the server is gone
        }
      }
    };
    const clients = Array.from({ length: 6 }, () => client());
    await new Promise((r) => setTimeout(r, 3000));
    const killedAt = performance.now();
    server.proc.kill('SIGKILL');
    stop = true;
    await Promise.all(clients);
    await server.stop({ keepDir: true });
    try {
      const log = join(server.dir, 'audit.log');
      const logged = new Set(
        readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('{') && l.endsWith('}'))
          .map((l) => (JSON.parse(l) as { requestId?: string }).requestId),
      );
      const lost = [...answered].filter(([id]) => !logged.has(id));
      const oldest = lost.length === 0 ? 0 : Math.max(...lost.map(([, t]) => killedAt - t));
      process.stdout.write(
        `      kill -9 after ${answered.size} answered requests: ${lost.length} missing from the audit log, ` +
          `the oldest answered ${oldest.toFixed(0)} ms before the kill (batch window ${FLUSH_MS} ms)\n`,
      );
      expect(answered.size).to.be.greaterThan(10);
      expect(oldest, 'a lost line older than one batch window').to.be.at.most(FLUSH_MS + SLACK_MS);

      // The restarted writer repairs a torn tail and continues the chain; the checkpoint agrees.
      const again = await startServer({ ...env, INFERFLUX_AUDIT_LOG: log });
      const res = await fetch(`${again.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'after', max_tokens: 2 }),
      });
      expect(res.status).to.equal(200);
      await res.text();
      expect(await again.stop()).to.equal(0);
      const [report] = await verifyAuditPaths([log]);
      expect(report, JSON.stringify(report?.problem)).to.deep.include({ ok: true, start: 'genesis' });
      expect(report!.checkpoint).to.not.equal(null);
    } finally {
      rmSync(server.dir, { recursive: true, force: true });
    }
  });
});
