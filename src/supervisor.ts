/**
 * The supervisor: a small parent process that runs the real server (src/serve.ts) as a child and
 * restarts it when it dies. Validation cannot rule out every native fault (a GGML_ASSERT or a
 * segfault in any llama.cpp thread ends the whole process, and JavaScript cannot catch it), so
 * the fault domain of such a fault is the child process, not the service:
 *
 * - The child gets the same argv and env (plus `INFERFLUX_SUPERVISE=0`). It binds its port before
 *   loading models, so while a restarted child loads, `/readyz` answers 503 and generation routes
 *   503 `model_not_loaded` with Retry-After. A configured port is kept across restarts (with
 *   port 0 a restarted server gets a new one: the kernel's pick cannot be re-bound while the dead
 *   server's connections are in TIME_WAIT).
 * - A child that dies of a signal or exits non-zero after it was ready is restarted: at once the
 *   first time, then after 0.5, 1, 2, 4 s while crashes keep coming; more than `maxRestarts`
 *   crashes within `windowMs` is a crash loop and the supervisor gives up. A child that fails
 *   before its first ready (bad config, port in use, invalid model) is not restarted: the same
 *   start would fail the same way.
 * - SIGTERM/SIGINT to the supervisor are forwarded; a clean exit (0) ends both. The supervisor
 *   exits with the child's code (128 + signal number for a signal), so exit codes are preserved.
 * - The child shuts down when the supervisor's IPC channel closes (the supervisor was killed).
 * The restarted child's audit writer continues the hash chain from the log's last line (and its
 * checkpoint) and records a `server.restarted` lifecycle line naming the crash.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { componentLog } from './log/logger.js';
import type { ToSupervisor } from './serve.js';

export interface RestartPolicyOptions {
  /** Crashes tolerated within `windowMs` before giving up. Defaults to `5`. */
  maxRestarts?: number;
  /** Defaults to `60_000`. */
  windowMs?: number;
  /** Delay before the n-th consecutive restart (last entry repeats). Defaults to `[0, 500, 1000, 2000, 4000]`. */
  backoffMs?: readonly number[];
}

export type ExitDecision = { action: 'restart'; delayMs: number; crashes: number } | { action: 'exit'; code: number; why: string };

/** Exit code of a child: its code, or 128 + the signal number (the shell's convention). */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal) return 128 + (constants.signals[signal] ?? 0);
  return code ?? 1;
}

/** Pure restart rules: what to do when the child exits (time is passed in). */
export class RestartPolicy {
  private readonly crashes: number[] = [];
  private readonly maxRestarts: number;
  private readonly windowMs: number;
  private readonly backoffMs: readonly number[];

  constructor(opts: RestartPolicyOptions = {}) {
    this.maxRestarts = opts.maxRestarts ?? 5;
    this.windowMs = opts.windowMs ?? 60_000;
    this.backoffMs = opts.backoffMs ?? [0, 500, 1000, 2000, 4000];
  }

  /**
   * `everReady`: some child reached ready (a first start that fails is a configuration problem);
   * `stopping`: the supervisor was asked to stop.
   */
  onExit(now: number, exit: { code: number | null; signal: NodeJS.Signals | null }, state: { everReady: boolean; stopping: boolean }): ExitDecision {
    const code = exitCodeOf(exit.code, exit.signal);
    if (state.stopping) return { action: 'exit', code, why: 'stopped' };
    if (exit.signal === null && exit.code === 0) return { action: 'exit', code: 0, why: 'the server exited cleanly' };
    if (!state.everReady) return { action: 'exit', code, why: 'the server failed before it was ever ready; not restarting' };
    while (this.crashes.length > 0 && this.crashes[0]! <= now - this.windowMs) this.crashes.shift();
    this.crashes.push(now);
    if (this.crashes.length > this.maxRestarts) {
      return { action: 'exit', code, why: `crash loop: ${this.crashes.length} crashes within ${this.windowMs / 1000} s; giving up` };
    }
    const delayMs = this.backoffMs[Math.min(this.crashes.length - 1, this.backoffMs.length - 1)]!;
    return { action: 'restart', delayMs, crashes: this.crashes.length };
  }
}

const log = componentLog('supervisor');

/** Runs `entry` (dist/main.js) as the supervised server until it ends for good. */
export function runSupervisor(entry: string): void {
  const policy = new RestartPolicy();
  let child: ChildProcess | null = null;
  let port: number | null = null;
  let everReady = false;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | null = null;
  let crashedAt: number | null = null;
  let restartReason = '';

  const start = (): void => {
    const env: NodeJS.ProcessEnv = { ...process.env, INFERFLUX_SUPERVISE: '0' };
    // A restarted server keeps the address clients and load balancers know.
    if (port !== null) env.INFERFLUX_PORT = String(port);
    if (restartReason) env.INFERFLUX_RESTART_REASON = restartReason;
    const c = fork(entry, process.argv.slice(2), { env, stdio: ['inherit', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
    child = c;
    c.on('message', (msg: ToSupervisor) => {
      // A fixed port is kept. A kernel-picked one (port 0) is not: Linux does not let another
      // socket bind over it while the dead server's connections sit in TIME_WAIT (~60 s).
      if (msg?.t === 'bound' && msg.configuredPort !== 0) port = msg.port;
      if (msg?.t === 'ready') {
        everReady = true;
        if (crashedAt !== null) log(`server (pid ${c.pid}) ready again ${Date.now() - crashedAt} ms after the crash`);
        crashedAt = null;
      }
    });
    c.once('exit', (code, signal) => {
      child = null;
      const now = Date.now();
      const d = policy.onExit(now, { code, signal }, { everReady, stopping });
      const how = signal ? `died of ${signal}` : `exited with ${code}`;
      if (d.action === 'exit') {
        if (!stopping) log(`server (pid ${c.pid}) ${how}: ${d.why}`);
        process.exit(d.code);
      }
      crashedAt ??= now;
      restartReason = `the previous server process (pid ${c.pid}) ${how}`;
      log(`server (pid ${c.pid}) ${how}; restart ${d.crashes} in ${d.delayMs} ms`);
      restartTimer = setTimeout(() => {
        restartTimer = null;
        start();
      }, d.delayMs);
    });
  };

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    if (restartTimer) {
      clearTimeout(restartTimer);
      process.exit(0);
    }
    child?.kill(signal);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  start();
}
