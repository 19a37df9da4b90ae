/**
 * Starts the real server (`node dist/main.js`) as a child process on an ephemeral port with the
 * generated tiny model, and stops it with SIGTERM. Integration tests talk to it over loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { ensureModel } from '../../src/runtime/gguf/generate.js';

export interface RunningServer {
  url: string;
  port: number;
  dir: string;
  proc: ChildProcess;
  /** Everything the server wrote to stdout (its log lines) and stderr so far. */
  logs(): string;
  /** SIGTERM, wait for exit, then delete `dir` unless `keepDir` (the caller removes it). */
  stop(opts?: { keepDir?: boolean }): Promise<number | null>;
}

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

/** The tiny test model, generated once per machine into the OS temp dir. */
export async function tinyModel(): Promise<string> {
  const path = join(tmpdir(), 'inferflux-test-models', 'tiny-seed0.gguf');
  await ensureModel('tiny', path, 0);
  return path;
}

export async function startServer(env: Record<string, string> = {}, timeoutMs = 60_000): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ifx-it-'));
  const modelPath = await tinyModel();
  const proc = spawn(process.execPath, [MAIN], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dir,
      INFERFLUX_HOST: '127.0.0.1',
      INFERFLUX_PORT: '0',
      INFERFLUX_MODEL_PATH: modelPath,
      INFERFLUX_AUDIT_LOG: join(dir, 'audit.log'),
      // Pulled models go to the test's own directory, never the user's cache.
      INFERFLUX_MODELS_DIR: join(dir, 'pulled'),
      // Tests signal and inspect the server's own pid; the supervisor tests opt back in.
      INFERFLUX_SUPERVISE: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let scheme = 'http';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${log}`)), timeoutMs);
    const check = (): void => {
      const m = /listening on (https?):\/\/[^:]+:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        scheme = m[1]!;
        resolve(Number(m[2]));
      }
    };
    proc.stdout!.on('data', check);
    proc.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${log}`));
    });
  });
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    dir,
    proc,
    logs: () => log,
    async stop(opts = {}) {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const code = await exited;
      if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

export interface ApiResponse {
  status: number;
  /** The JSON body ({} when empty). */
  body: Record<string, any>;
  headers: Headers;
}

/** One JSON round trip to the server, with `key` as the Bearer token (none when null). */
export async function api(server: RunningServer, method: string, path: string, body: unknown, key: string | null): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {}, headers: res.headers };
}

/** Value of one Prometheus sample line, e.g. metric('inferflux_active_sequences{model="x"}'). */
export async function metric(url: string, sample: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

/**
 * A real server for one `describe` block, started in `before` and stopped in `after`, with an
 * `openai` client pointed at it (no retries). Read `ctx.server` / `ctx.client` inside the tests.
 */
export function serverWithOpenAI(env: Record<string, string> = {}): { server: RunningServer; client: OpenAI } {
  const ctx = {} as { server: RunningServer; client: OpenAI };
  before(async () => {
    ctx.server = await startServer(env);
    ctx.client = new OpenAI({ baseURL: `${ctx.server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await ctx.server?.stop();
  });
  return ctx;
}
