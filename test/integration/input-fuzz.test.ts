/**
 * Fuzzing what clients send, with bounded, seeded cases (`INFERFLUX_FUZZ_SEED` reproduces a run):
 *
 * - JSON bodies: mutations of valid chat, completion and admin bodies (type swaps, deep nesting,
 *   huge and negative numbers, long and odd strings, unknown fields, broken JSON) against the real
 *   server. Every answer must be a 2xx or a 4xx in OpenAI's shape (never a 5xx) and the server must
 *   still serve afterwards.
 * - Headers: random names, values, counts and lengths over raw sockets; the server keeps serving.
 * - Grammar text: mutations of valid GBNF; whatever the TypeScript check accepts is parsed by real
 *   llama.cpp in a child process, which must not crash (a bad grammar that reaches llama.cpp's parser
 *   can SIGSEGV the process, docs/grammar.md).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkGbnf } from '../../src/runtime/grammar/gbnf-check.js';
import { mulberry32 as rng } from '../../bench/server.js';
import { startServer, tinyModel, type RunningServer } from '../helpers/server.js';

const SEED = Number(process.env.INFERFLUX_FUZZ_SEED ?? 20261205);

const BASES: [string, Record<string, unknown>][] = [
  ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, temperature: 0.5 }],
  ['/v1/completions', { prompt: 'hello', max_tokens: 3, logprobs: 1 }],
  ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 4, response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['a'] } } } }],
  ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 40, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { q: { type: 'string', maxLength: 4 } }, required: ['q'] } } }], tool_choice: 'required' }],
  ['/v1/admin/cache', { action: 'warm', prompt: 'hello' }],
];

const ODD_VALUES: unknown[] = [null, true, -1, 0, 1e308, -1e308, 2 ** 53 + 1, 0.5, '', 'x'.repeat(5000), '\u0000\uFFFF\uD83D', [], {}, [[[]]], { a: { b: { c: {} } } }, 'NaN', -0];

function mutate(value: unknown, r: () => number, depth = 0): unknown {
  if (r() < 0.15) return ODD_VALUES[Math.floor(r() * ODD_VALUES.length)];
  if (Array.isArray(value)) return value.map((v) => mutate(v, r, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (r() > 0.1) out[k] = mutate(v, r, depth + 1);
    if (r() < 0.1) out[`x_${Math.floor(r() * 100)}`] = 1;
    return out;
  }
  return value;
}

function nest(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

describe('input fuzz: bodies, headers, grammar text (real server, real llama.cpp)', function () {
  this.timeout(240_000);
  let server: RunningServer;

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('150 mutated JSON bodies: never a 5xx, always an OpenAI-shaped error or a success, server alive', async () => {
    const r = rng(SEED);
    const bad: string[] = [];
    for (let i = 0; i < 150; i++) {
      const [path, base] = BASES[i % BASES.length]!;
      let body: string;
      const kind = r();
      if (kind < 0.7) body = JSON.stringify(mutate(base, r));
      else if (kind < 0.8) body = JSON.stringify(base).slice(0, Math.floor(r() * 40));
      else if (kind < 0.9) body = `{"messages": ${nest(10 + Math.floor(r() * 5000))}}`;
      else body = Buffer.from(Array.from({ length: 64 }, () => Math.floor(r() * 256))).toString('latin1');
      const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(60_000) });
      const text = await res.text();
      if (res.status >= 500) bad.push(`#${i} ${path} ${res.status}: ${text.slice(0, 200)}`);
      else if (res.status >= 400) {
        const parsed = JSON.parse(text) as { error?: { message?: unknown; code?: unknown } };
        if (typeof parsed.error?.message !== 'string' || typeof parsed.error?.code !== 'string') bad.push(`#${i} ${path} ${res.status} not OpenAI-shaped: ${text.slice(0, 200)}`);
      }
    }
    expect(bad).to.deep.equal([]);
    expect((await fetch(`${server.url}/readyz`)).status).to.equal(200);
  });

  it('80 odd header sets over raw sockets: the server keeps serving', async () => {
    const r = rng(SEED + 1);
    const port = Number(new URL(server.url).port);
    for (let i = 0; i < 80; i++) {
      const lines = ['GET /v1/models HTTP/1.1', 'Host: 127.0.0.1'];
      const count = Math.floor(r() * 60);
      for (let h = 0; h < count; h++) {
        const name = r() < 0.2 ? 'x\u0001bad' : `x-f${h}`;
        const len = r() < 0.1 ? 20_000 : Math.floor(r() * 64);
        const value = Array.from({ length: len }, () => String.fromCharCode(32 + Math.floor(r() * 95))).join('');
        lines.push(`${name}: ${value}`);
      }
      if (r() < 0.2) lines.push('Authorization: Bearer ' + 'A'.repeat(Math.floor(r() * 9000)));
      if (r() < 0.2) lines.push('traceparent: 00-zz-00-01', 'X-InferFlux-Priority: 99999999999');
      await new Promise<void>((resolve) => {
        const sock = net.connect(port, '127.0.0.1', () => sock.end(lines.join('\r\n') + '\r\n\r\n'));
        sock.on('data', () => undefined);
        sock.on('error', () => resolve());
        sock.on('close', () => resolve());
        sock.setTimeout(15_000, () => sock.destroy());
      });
    }
    const res = await fetch(`${server.url}/v1/models`);
    expect(res.status).to.equal(200);
  });

  it('200 mutated grammars: what the check accepts, llama.cpp parses without crashing', async () => {
    const r = rng(SEED + 2);
    const seeds = [
      'root ::= "a" | "b"',
      'root ::= item (", " item)*\nitem ::= [a-z]+ [0-9]{1,3}',
      'root ::= "{" ws "\\"k\\":" ws ( "true" | "false" ) ws "}"\nws ::= [ \\t\\n]?',
      'root ::= ("x" ("y" ("z")?)?)+ [^"\\\\]*',
    ];
    const pieces = ['(', ')', '[', ']', '"', '\\', '*', '+', '?', '{2,3}', '{', '}', '|', '::=', 'root', 'ws', '\n', ' ', '^', '-', '.', '<', '>', '!', '\u00ff', '9'];
    const accepted: string[] = [];
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      let g = seeds[i % seeds.length]!;
      const edits = 1 + Math.floor(r() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(r() * (g.length + 1));
        const op = r();
        if (op < 0.4) g = g.slice(0, at) + pieces[Math.floor(r() * pieces.length)] + g.slice(at);
        else if (op < 0.7) g = g.slice(0, at) + g.slice(at + 1 + Math.floor(r() * 3));
        else g = g.slice(0, at) + '('.repeat(Math.floor(r() * 400)) + g.slice(at);
      }
      try {
        checkGbnf(g, 'grammar');
        accepted.push(g);
      } catch {
        refused++;
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'ifx-gfuzz-'));
    try {
      const file = join(dir, 'grammars.json');
      writeFileSync(file, JSON.stringify(accepted));
      const script = `
        import { readFileSync } from 'node:fs';
        import { getLlama, LlamaLogLevel } from ${JSON.stringify(new URL('../../node_modules/node-llama-cpp/dist/index.js', import.meta.url).href)};
        const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled, maxThreads: 1 });
        const model = await llama.loadModel({ modelPath: ${JSON.stringify(await tinyModel())} });
        const { BatchContext } = await import(${JSON.stringify(new URL('../../dist/runtime/llama/batch-adapter.js', import.meta.url).href)});
        const ctx = await model.createContext({ contextSize: 64, sequences: 1, threads: 1 });
        const batch = new BatchContext(llama, model, ctx);
        let parsed = 0, refused = 0;
        for (const g of JSON.parse(readFileSync(${JSON.stringify(file)}, 'utf8'))) {
          try { batch.createGrammarState(batch.createGrammar(g)); parsed++; } catch { refused++; }
        }
        await ctx.dispose(); await model.dispose(); await llama.dispose();
        process.stdout.write(JSON.stringify({ parsed, refused }));
      `;
      // A file, not `-e`: node-llama-cpp forks a binary test with this process's execArgv.
      const scriptFile = join(dir, 'parse.mjs');
      writeFileSync(scriptFile, script);
      const child = spawn(process.execPath, [scriptFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
      expect({ code, signal }, err.slice(-500)).to.deep.equal({ code: 0, signal: null });
      const counts = JSON.parse(out) as { parsed: number; refused: number };
      expect(counts.parsed + counts.refused).to.equal(accepted.length);
      // Reported for the record: how much of the fuzz reached llama.cpp at all.
      process.stdout.write(`      grammar fuzz: ${refused} refused by the check, ${counts.parsed} parsed by llama.cpp, ${counts.refused} refused by it; crashes 0\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
