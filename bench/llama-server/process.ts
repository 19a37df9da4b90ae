/**
 * llama.cpp's `llama-server` as the bench's anchor: finds the binary `build.sh` made (never builds
 * it here: that takes minutes, so the bench says how and fails instead of silently measuring
 * something else), starts it on 127.0.0.1 and a free port with the sizing the caller passes, waits
 * for `/health` 200, and stops it with SIGTERM (SIGKILL after 15 s).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopServer } from '../server-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_SCRIPT = path.join(ROOT, 'bench', 'llama-server', 'build.sh');
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;

export class LlamaServerMissingError extends Error {}

/**
 * The llama-server binary: INFERFLUX_LLAMA_SERVER_BIN, else the path build.sh caches it at for this
 * node_modules' llama.cpp bundle and this CPU (`build.sh --print-path`, which does not build).
 */
export function locateLlamaServer(env: NodeJS.ProcessEnv = process.env): { bin: string; info: string } {
  const override = env.INFERFLUX_LLAMA_SERVER_BIN;
  if (override !== undefined && override !== '') {
    if (!existsSync(override)) throw new LlamaServerMissingError(`INFERFLUX_LLAMA_SERVER_BIN=${override} does not exist`);
    return { bin: override, info: 'INFERFLUX_LLAMA_SERVER_BIN' };
  }
  let out: string;
  try {
    out = execFileSync('bash', [BUILD_SCRIPT, '--print-path'], { cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    const expected = (e.stdout ?? '').trim();
    throw new LlamaServerMissingError(
      `llama-server is not built${expected ? ` (expected at ${expected})` : ''}: run \`npm run bench:build-llama-server\` first ` +
        `(builds llama.cpp's server from node_modules/node-llama-cpp/llama/gitRelease.bundle, several minutes on 2 cores). ${(e.stderr ?? '').trim()}`,
    );
  }
  return { bin: out, info: 'build.sh cache' };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface LlamaServerOptions {
  bin: string;
  modelPath: string;
  /** -t and -tb: llama.cpp threads, the total the InferFlux server uses. */
  threads: number;
  /** --parallel: slots (bench/run.ts: one per client of the busiest level, at most InferFlux's sequences). */
  parallel: number;
  /** Context per slot; -c is parallel x this (llama-server splits -c across slots). */
  contextPerSlot: number;
  /** -b and -ub (node-llama-cpp sets n_ubatch = n_batch = batchSize). */
  batchSize: number;
}

export interface LlamaServer {
  baseUrl: string;
  pid: number | undefined;
  args: string[];
  log: string[];
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

export function llamaServerArgs(o: LlamaServerOptions, port: number): string[] {
  return [
    '-m', o.modelPath,
    '-t', String(o.threads),
    '-tb', String(o.threads),
    '--parallel', String(o.parallel),
    '-c', String(o.parallel * o.contextPerSlot),
    '-b', String(o.batchSize),
    '-ub', String(o.batchSize),
    '--host', '127.0.0.1',
    '--port', String(port),
    '--no-webui',
  ];
}

export async function startLlamaServer(o: LlamaServerOptions): Promise<LlamaServer> {
  const port = await freePort();
  const args = llamaServerArgs(o, port);
  const child = spawn(o.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const collect = (s: Buffer): void => {
    for (const line of s.toString('utf8').split('\n')) if (line.trim() !== '') log.push(line);
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void exited.then((r) => (exitInfo = r));
  const stop = async () => {
    const res = await stopServer({ child, exited }, STOP_TIMEOUT_MS);
    return { code: res.code, signal: res.signal, ms: res.ms };
  };
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exitInfo !== null) {
      const { code, signal } = exitInfo;
      throw new Error(`llama-server exited during start-up (code ${code}, signal ${signal}): ${log.slice(-5).join(' | ')}`);
    }
    try {
      const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not accepting yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`llama-server /health was not 200 within ${START_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { baseUrl, pid: child.pid, args, log, stop };
}
