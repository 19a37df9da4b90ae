/**
 * Two real servers on one port: the second must fail start-up with an error naming the port and
 * INFERFLUX_PORT, before it loads any model, and the first keeps serving alone. (uWS shares a
 * port between processes by default; clients would then alternate between two servers.)
 */
import { expect } from 'chai';
import net from 'node:net';
import { startServer } from '../helpers/server.js';

/** A port that was free a moment ago (the kernel's pick for port 0). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('port already in use', function () {
  this.timeout(120_000);

  it('a second server on the same port exits 1 before loading models, naming the port and INFERFLUX_PORT', async () => {
    // A fixed port, as in production: uWS shares a fixed port between processes, while a port-0
    // pick happened not to be shareable, so the first server must not use port 0 here.
    const first = await startServer({ INFERFLUX_PORT: String(await freePort()) });
    try {
      let error: Error | null = null;
      const startedAt = Date.now();
      try {
        const second = await startServer({ INFERFLUX_PORT: String(first.port) });
        await second.stop();
      } catch (err) {
        error = err as Error;
      }
      const elapsed = Date.now() - startedAt;
      expect(error, 'the second server must not start').to.not.equal(null);
      const [headline, ...rest] = error!.message.split('\n');
      expect(headline).to.equal('server exited with 1 before listening:');
      const log = rest.join('\n');
      expect(log).to.include(`failed to start: cannot listen on 127.0.0.1:${first.port}`);
      expect(log).to.include('INFERFLUX_PORT');
      // Nothing model-related ran: the bind failed before the model step's first line.
      expect(log).to.not.match(/loading models|listening on/);
      expect(log.trim().split('\n').at(-1)).to.include('failed to start: cannot listen');
      expect(elapsed).to.be.below(30_000);
      // The first server is still the only one answering on the port.
      const ready = await fetch(`${first.url}/readyz`);
      expect(ready.status).to.equal(200);
    } finally {
      await first.stop();
    }
  });
});
