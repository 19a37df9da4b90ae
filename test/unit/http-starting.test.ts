/**
 * The edge before the models are loaded (start-up, supervised restart): liveness 200, readiness
 * 503, every other route 503 model_not_loaded with Retry-After; after `activate` the real routes.
 * And the port is taken exclusively: a second bind on it fails with an error naming the port and
 * INFERFLUX_PORT (uWS shares ports by default).
 */
import { expect } from 'chai';
import { Metrics } from '../../src/metrics.js';
import { createHttpServer, createStartingHttpServer } from '../../src/http/server.js';
import { FakeGateway, testConfig } from './http-fixtures.js';

describe('http edge while starting', () => {
  it('answers livez 200, readyz 503 and generation 503 model_not_loaded with Retry-After until activated', async () => {
    const config = testConfig();
    const metrics = new Metrics({ defaultMetrics: false });
    const server = createStartingHttpServer({ config, metrics });
    const port = await server.listen();
    const base = `http://127.0.0.1:${port}`;
    try {
      const live = await fetch(`${base}/livez`);
      expect(live.status).to.equal(200);
      expect(await live.json()).to.deep.equal({ status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).to.equal(503);
      expect(ready.headers.get('retry-after')).to.equal('1');
      expect(await ready.json()).to.deep.equal({ ready: false, status: 'starting', models: [], pools: [] });
      const gen = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(gen.status).to.equal(503);
      expect(gen.headers.get('retry-after')).to.equal('1');
      expect(await gen.json()).to.deep.equal({
        error: { message: 'The server is starting: models are still loading.', type: 'service_unavailable', param: null, code: 'model_not_loaded' },
      });

      server.activate({ config, metrics, gateway: new FakeGateway() });
      const after = await fetch(`${base}/readyz`);
      expect(after.status).to.equal(200);
      expect(((await after.json()) as { ready: boolean }).ready).to.equal(true);
    } finally {
      await server.close(0);
    }
  });

  it('refuses a port another server already listens on, naming the port and INFERFLUX_PORT', async () => {
    const first = createHttpServer({ config: testConfig(), metrics: new Metrics({ defaultMetrics: false }), gateway: new FakeGateway() });
    const port = await first.listen();
    try {
      const second = createStartingHttpServer({ config: testConfig({ port }), metrics: new Metrics({ defaultMetrics: false }) });
      let error: Error | null = null;
      try {
        await second.listen();
        await second.close(0);
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message).to.equal(
        `cannot listen on 127.0.0.1:${port}: the port is in use by another process or cannot be bound on that address; ` +
          'choose another with INFERFLUX_PORT (or server.port in the config file)',
      );
    } finally {
      await first.close(0);
    }
  });
});
