/**
 * The bench clients against the real server, so benchmark numbers rest on what the server
 * actually sends (TTFT, usage, [DONE]).
 */
import { expect } from 'chai';
import { streamCompletion } from '../../bench/load.js';
import { streamRequest } from '../../bench/stream-client.js';
import { startServer } from '../helpers/server.js';

describe('bench clients', () => {
  it('reads the real server through both bench clients', async function () {
    this.timeout(120_000);
    const server = await startServer();
    try {
      const a = await streamCompletion(server.url, 'bench client smoke test', 8, AbortSignal.timeout(60_000));
      expect(a.error).to.equal(undefined);
      expect(a.completionTokens).to.equal(8);
      const b = await streamRequest({ baseUrl: server.url, prompt: 'bench client smoke test', maxTokens: 8, signal: AbortSignal.timeout(60_000) });
      expect(b.error).to.equal(undefined);
      expect(b.completionTokens).to.equal(8);
      expect(b.ttftMs).to.be.greaterThan(0);
    } finally {
      await server.stop();
    }
  });
});
