/**
 * The real server for the scenario benchmarks (interference, prefix cache, fairness): `node
 * dist/main.js` on 127.0.0.1, port 0, on the bench model, with a temp dir for its audit log and
 * policy store (never the repository's) and an optional YAML layer (INFERFLUX_CONFIG) for runtime
 * knobs. Same start/stop protocol as `run.ts`: the port comes from the `listening on` log line,
 * ready means `/readyz` 200, stop is SIGTERM with a SIGKILL fallback.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureModel } from '../src/runtime/gguf/generate.js';
import { mulberry32 } from '../src/runtime/gguf/prng.js';
import { eachLogLine, stopServer } from './server-process.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BENCH_MODEL = path.join(ROOT, 'models', 'bench.gguf');
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;

export interface BenchServer {
  baseUrl: string;
  pid: number | undefined;
  log: string[];
  /** The server's sizing line, e.g. `2 engine worker(s) x 1 thread(s) x 4 sequences ...`. */
  sizing: string;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

export interface ServerOptions {
  /** YAML text for INFERFLUX_CONFIG (layered over the built-in default); none = built-in only. */
  yaml?: string;
  /** Extra environment (INFERFLUX_DECODE_POOL_SIZE, INFERFLUX_API_KEYS, ...). */
  env?: Record<string, string>;
  /** Node flags before dist/main.js (e.g. `--cpu-prof`, as bench/profile-step.ts uses). */
  nodeArgs?: string[];
}

/**
 * What the numbers were measured on: HEAD, uncommitted src/ changes and dist/main.js's build time
 * (the working tree is shared, and the server runs whatever dist/ holds).
 */
export function provenance(): string {
  const git = (args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return '?';
    }
  };
  const dirty = git(['status', '--porcelain', '--', 'src']).split('\n').filter((l) => l.trim() !== '').length;
  let built = '?';
  try {
    built = statSync(path.join(ROOT, 'dist', 'main.js')).mtime.toISOString();
  } catch {
    // not built
  }
  return `HEAD ${git(['rev-parse', '--short', 'HEAD'])}, ${dirty} uncommitted file(s) under src/, dist/main.js built ${built}`;
}

export async function benchModel(): Promise<string> {
  const gen = await ensureModel('bench', BENCH_MODEL);
  return `${path.relative(ROOT, BENCH_MODEL)} (${gen.created ? 'generated now' : 'reused'}; bench shape, random weights)`;
}

export async function startServer(o: ServerOptions = {}): Promise<BenchServer> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'inferflux-bench-'));
  // An empty YAML file still replaces config/server.yaml, so every run starts from the built-in
  // default plus what the bench sets, whatever another engineer has in the working tree.
  const yamlPath = path.join(tmp, 'server.yaml');
  writeFileSync(yamlPath, o.yaml ?? '{}\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    INFERFLUX_CONFIG: yamlPath,
    INFERFLUX_MODEL_PATH: BENCH_MODEL,
    INFERFLUX_PORT: '0',
    INFERFLUX_HOST: '127.0.0.1',
    INFERFLUX_AUDIT_LOG: path.join(tmp, 'audit.log'),
    INFERFLUX_POLICY_STORE: path.join(tmp, 'policy_store.conf'),
    ...o.env,
  };
  delete env.INFERFLUX_MODELS;
  const child: ChildProcess = spawn(process.execPath, [...(o.nodeArgs ?? []), path.join(ROOT, 'dist', 'main.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    const res = await stopServer({ child, exited }, STOP_TIMEOUT_MS);
    rmSync(tmp, { recursive: true, force: true });
    // An unclean exit is a finding: show what the server said last.
    if (res.code !== 0) for (const l of log.slice(-15)) process.stdout.write(`    server: ${l}\n`);
    return { code: res.code, signal: res.signal, ms: res.ms };
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not log "listening on" within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      eachLogLine(child, (line) => {
        log.push(line);
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`server exited during start-up (code ${code}, signal ${signal}): ${log.slice(-5).join(' | ')}`));
      });
    });
    const baseUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // not accepting yet
      }
      if (Date.now() > deadline) throw new Error(`/readyz was not 200 within ${START_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const sizing = (log.find((l) => l.includes('engine worker(s)')) ?? '').replace(/^\S+ inferflux /, '');
    return { baseUrl, pid: child.pid, log, sizing, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Sum of a Prometheus counter's samples by one label, from the /metrics text. */
export async function counterByLabel(baseUrl: string, name: string, label: string): Promise<Map<string, number>> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const out = new Map<string, number>();
  const re = new RegExp(`^${name}\\{([^}]*)\\}\\s+(\\S+)`, 'gm');
  for (const m of text.matchAll(re)) {
    const lv = new RegExp(`${label}="([^"]*)"`).exec(m[1]!);
    if (!lv) continue;
    out.set(lv[1]!, (out.get(lv[1]!) ?? 0) + Number(m[2]));
  }
  return out;
}

export const say = (line: string): void => void process.stdout.write(`${line}\n`);

/** Runs a bench's main: its exit code (a measurement that completed is 0), 1 with the stack on a throw. */
export function runBench(main: () => Promise<number>): void {
  main().then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

/** The project's one PRNG (src/runtime/gguf/prng.ts), re-exported for benches and fuzz tests. */
export { mulberry32 };

/** `n` pseudo-random token ids in [100, 30000) (inside the bench vocabulary of 32000, clear of special ids). */
export function randomTokens(seed: number, n: number): number[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: n }, () => 100 + Math.floor(rnd() * 29_900));
}

/** Deterministic lowercase pseudo-words, joined by spaces. */
export function randomWords(seed: number, count: number): string {
  const rnd = mulberry32(seed);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return Array.from({ length: count }, () => {
    const len = 2 + Math.floor(rnd() * 6);
    let w = '';
    for (let i = 0; i < len; i++) w += letters[Math.floor(rnd() * letters.length)];
    return w;
  }).join(' ');
}
