/**
 * The supervisor against a real native abort: the server runs under `node dist/main.js` (the
 * supervisor) and an engine worker thread raises SIGABRT, as a failed GGML_ASSERT does (test
 * hook: SIGUSR2 with INFERFLUX_FAULT_INJECTION=1). A streaming client in flight gets an error, not
 * a hang; the supervisor starts a new server on the same port, which answers /readyz 503 until its
 * models are loaded and 200 after; the audit chain continues across the two processes; SIGTERM to
 * the supervisor stops both with exit code 0. Restart times are measured and printed.
 */
import { expect } from 'chai';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { verifyAuditPaths } from '../../src/cli/audit-verify.js';
import { startServer } from '../helpers/server.js';

/** A port that was free a moment ago: the restarted server must come back on the same one. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

function childPids(log: string): number[] {
  return [...log.matchAll(/\bbound \S+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('supervisor: a native abort in an engine thread', function () {
  this.timeout(180_000);

  it('cuts the in-flight stream with an error, restarts the server (readyz 503 then 200), keeps the audit chain', async () => {
    const server = await startServer({
      INFERFLUX_SUPERVISE: '1',
      INFERFLUX_FAULT_INJECTION: '1',
      INFERFLUX_DECODE_POOL_SIZE: '1',
      INFERFLUX_PORT: String(await freePort()),
    });
    try {
      const [first] = childPids(server.logs());
      expect(first).to.be.a('number').and.not.equal(server.proc.pid);

      // A long stream, started and producing before the crash.
      const res = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'go on' }], max_tokens: 1900, ignore_eos: true, stream: true }),
      });
      expect(res.status).to.equal(200);
      const reader = res.body!.getReader();
      const firstChunk = await reader.read();
      expect(firstChunk.done).to.equal(false);
      const streamEnd = (async () => {
        let text = '';
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return { error: null, text };
          text += Buffer.from(value).toString();
        }
      })().catch((err: unknown) => ({ error: err as Error, text: '' }));

      const crashAt = performance.now();
      process.kill(first!, 'SIGUSR2');
      const ended = await Promise.race([streamEnd, new Promise<'hang'>((r) => setTimeout(() => r('hang'), 15_000))]);
      expect(ended, 'the stream hung after the crash').to.not.equal('hang');
      const end = ended as { error: Error | null; text: string };
      // Cut: either a socket error, or an end without the final [DONE].
      expect(end.error !== null || !end.text.includes('[DONE]'), 'the stream ended as if complete').to.equal(true);
      const cutAfter = performance.now() - crashAt;

      // /readyz: refused or 503 while the new server starts, then 200.
      const seen: { at: number; status: number | 'refused' }[] = [];
      let readyAt = 0;
      while (performance.now() - crashAt < 120_000) {
        let status: number | 'refused';
        try {
          status = (await fetch(`${server.url}/readyz`)).status;
        } catch {
          status = 'refused';
        }
        const at = performance.now() - crashAt;
        if (seen.at(-1)?.status !== status) seen.push({ at, status });
        if (status === 200 && childPids(server.logs()).length > 1) {
          readyAt = at;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const first503 = seen.find((s) => s.status === 503)?.at ?? NaN;
      process.stdout.write(
        `      native abort -> stream cut after ${cutAfter.toFixed(0)} ms; readyz ${seen.map((s) => `${s.status}@${s.at.toFixed(0)}ms`).join(' -> ')}; ` +
          `restarted server bound (503) ${first503.toFixed(0)} ms and ready (200) ${readyAt.toFixed(0)} ms after the crash\n`,
      );
      expect(server.logs()).to.match(new RegExp(`"component":"supervisor".*"msg":"server \\(pid ${first}\\) died of SIGABRT; restart 1 in 0 ms"`));
      const pids = childPids(server.logs());
      expect(pids, server.logs()).to.have.length(2);
      expect(alive(first!)).to.equal(false);
      expect(seen.some((s) => s.status === 503), 'the restarted server must say 503 while loading').to.equal(true);
      expect(readyAt).to.be.greaterThan(0);

      // Served again, and generation routes are back.
      const after = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'after the crash', max_tokens: 2 }),
      });
      expect(after.status).to.equal(200);
      await after.text();

      // SIGTERM to the supervisor ends both, exit code 0.
      expect(await server.stop({ keepDir: true })).to.equal(0);
      expect(alive(pids[1]!)).to.equal(false);
      const log = join(server.dir, 'audit.log');
      const [report] = await verifyAuditPaths([log]);
      expect(report, JSON.stringify(report?.problem)).to.deep.include({ ok: true, start: 'genesis' });
      const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string; decision?: string; detail?: string });
      expect(lines.find((l) => l.decision === 'server.restarted')?.detail).to.equal(`the previous server process (pid ${first}) died of SIGABRT`);
    } finally {
      if (server.proc.exitCode === null) await server.stop();
      rmSync(server.dir, { recursive: true, force: true });
    }
  });
});
