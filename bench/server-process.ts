/**
 * A real server process for benchmarks: `node dist/main.js` with the env given, port read from its
 * `listening on http://HOST:PORT` log line, ready once `/readyz` answers 200; stopped with SIGTERM
 * (SIGKILL only past a deadline). Also reads a process's CPU time from /proc, so a bench can show
 * that an idle server did not compete with the one under load.
 *
 * bench/server.ts starts the one-server benches itself (and stops through `stopServer`); this one takes a name (several servers at once)
 * and keeps the whole log (stdout and stderr lines) for the report.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ServerProcess {
  name: string;
  child: ChildProcess;
  baseUrl: string;
  /** Every log line so far (stdout and stderr). */
  log: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  root: string;
  name: string;
  env: NodeJS.ProcessEnv;
  /** Cap for "listening on" plus `/readyz` 200. */
  timeoutMs: number;
}

/** Calls `fn` with each line the server logs: pino writes to stdout, start-up failures go to stderr. */
export function eachLogLine(child: ChildProcess, fn: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr] as (Readable | null)[]) {
    if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', fn);
  }
}

export async function startServer(o: StartOptions): Promise<ServerProcess> {
  const child = spawn(process.execPath, [path.join(o.root, 'dist', 'main.js')], { cwd: o.root, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const s: ServerProcess = { name: o.name, child, baseUrl: '', log, exited };
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${o.name}: no "listening on" line within ${o.timeoutMs} ms`)), o.timeoutMs);
    eachLogLine(child, (line) => {
      log.push(line);
      const m = /listening on http:\/\/[^\s"]+:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${o.name}: exited during start-up (code ${code}, signal ${signal}); last log: ${log.slice(-3).join(' | ')}`));
    });
  });
  // Loopback only, whatever host the server printed.
  s.baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${s.baseUrl}/readyz`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.status === 200) return s;
    } catch {
      // not accepting yet
    }
    if (Date.now() > deadline) throw new Error(`${o.name}: /readyz was not 200 within ${o.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface StopResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  /** True when SIGTERM was not enough and the process was killed. */
  killed: boolean;
}

/** SIGTERM, then SIGKILL past `timeoutMs`: every bench's way of stopping a server process. */
export async function stopServer(s: Pick<ServerProcess, 'child' | 'exited'>, timeoutMs: number): Promise<StopResult> {
  const t0 = Date.now();
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  const res = await Promise.race([s.exited, timeout]);
  if (res === 'timeout') {
    s.child.kill('SIGKILL');
    return { ...(await s.exited), ms: Date.now() - t0, killed: true };
  }
  return { ...res, ms: Date.now() - t0, killed: false };
}

/**
 * User + system CPU seconds of a process and its live descendants (all their threads), from
 * /proc; NaN where /proc is missing. The descendants matter: `node dist/main.js` is by default a
 * supervisor whose child runs the server (src/main.ts), so the pid a bench holds uses no CPU itself.
 */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const own = ownCpuSeconds(pid);
  if (Number.isNaN(own)) return own;
  let total = own;
  for (const child of childPids(pid)) {
    const c = cpuSeconds(child);
    if (!Number.isNaN(c)) total += c; // a child that exited meanwhile
  }
  return total;
}

function ownCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
}

/** The process's children: each thread lists those it started (/proc/PID/task/TID/children). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(' ')) if (c !== '') out.push(Number(c));
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // the process ended meanwhile
  }
  return out;
}

/**
 * Waits until none of `pids` is using CPU: each used at most `idleCpuMs` of CPU over the last
 * `windowMs`. Gives up after `timeoutMs` and says how long it waited and whether they settled.
 * Why a bench needs it: llama-server's threads keep one core busy for ~130 ms after each request
 * (measured on the bench model), so whichever side runs right after it starts on a busy machine.
 * Where /proc is missing, it waits `windowMs` once.
 */
export async function settle(
  pids: readonly (number | undefined)[],
  o: { windowMs?: number; idleCpuMs?: number; timeoutMs?: number } = {},
): Promise<{ ms: number; settled: boolean }> {
  const windowMs = o.windowMs ?? 100;
  const idleCpuMs = o.idleCpuMs ?? 10;
  const timeoutMs = o.timeoutMs ?? 3000;
  const t0 = Date.now();
  const sample = (): number[] => pids.map((p) => cpuSeconds(p));
  let before = sample();
  for (;;) {
    await new Promise((r) => setTimeout(r, windowMs));
    const after = sample();
    if (after.some((v) => Number.isNaN(v))) return { ms: Date.now() - t0, settled: false };
    if (after.every((v, i) => (v - before[i]!) * 1000 <= idleCpuMs)) return { ms: Date.now() - t0, settled: true };
    if (Date.now() - t0 >= timeoutMs) return { ms: Date.now() - t0, settled: false };
    before = after;
  }
}
