/** The llama-server anchor's plumbing (no build, no inference): locating the binary, its arguments, the chart. */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { lineChartSvg, niceCeil } from '../../bench/chart-svg.js';
import { LlamaServerMissingError, llamaServerArgs, locateLlamaServer } from '../../bench/llama-server/process.js';

describe('bench llama-server anchor', () => {
  it('a missing binary is an error that says how to build it, never a fallback', () => {
    const cache = mkdtempSync(path.join(tmpdir(), 'inferflux-llama-cache-'));
    try {
      const env = { ...process.env, INFERFLUX_LLAMA_SERVER_CACHE: cache, INFERFLUX_LLAMA_CPU_VARIANT: 'haswell', INFERFLUX_LLAMA_SERVER_BIN: '' };
      let err: unknown;
      try {
        locateLlamaServer(env);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(LlamaServerMissingError);
      const msg = (err as Error).message;
      expect(msg).to.contain('npm run bench:build-llama-server');
      // The path build.sh would cache it at: <cache>/<bundle sha256>/<cpu variant>/llama-server.
      expect(msg).to.match(new RegExp(`${cache}/[0-9a-f]{64}/haswell/llama-server`));
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('INFERFLUX_LLAMA_SERVER_BIN must exist', () => {
    expect(() => locateLlamaServer({ ...process.env, INFERFLUX_LLAMA_SERVER_BIN: '/nonexistent/llama-server' })).to.throw(LlamaServerMissingError, /does not exist/);
  });

  it('sizes llama-server like InferFlux: threads, slots, context per slot, batch', () => {
    const args = llamaServerArgs({ bin: 'x', modelPath: 'm.gguf', threads: 2, parallel: 8, contextPerSlot: 2048, batchSize: 512 }, 4567);
    const arg = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
    expect(arg('-t')).to.equal('2');
    expect(arg('--parallel')).to.equal('8');
    expect(arg('-c')).to.equal(String(8 * 2048));
    expect(arg('-b')).to.equal('512');
    expect(arg('-ub')).to.equal('512');
    expect(arg('--host')).to.equal('127.0.0.1');
    expect(arg('--port')).to.equal('4567');
  });

  it('draws one polyline per server through every level', () => {
    const svg = lineChartSvg({
      title: 't <&>',
      xLabel: 'c',
      yLabel: 'tok/s',
      xs: [1, 4, 8, 16],
      series: [
        { name: 'InferFlux', color: '#1f77b4', points: [[1, 90], [4, 140], [8, 150], [16, 150]] },
        { name: 'llama-server', color: '#d62728', points: [[1, 95], [4, 180], [8, 200], [16, 200]] },
      ],
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).to.equal(true);
    expect(svg).to.contain('t &lt;&amp;&gt;');
    const lines = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
    expect(lines).to.deep.equal([4, 4]);
    expect(svg.match(/<circle /g)).to.have.length(8);
    expect(niceCeil(210)).to.equal(500);
    expect(niceCeil(150)).to.equal(200);
  });
});
