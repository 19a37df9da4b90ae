/**
 * `inferctl serve`: the server in the foreground, as a child process (`node dist/main.js`) with
 * the terminal's stdio, so its log is the terminal's and Ctrl-C stops it gracefully. The flags
 * are the server's own (src/config/server-flags.ts), passed as the INFERFLUX_* env it reads.
 * Also the detached start `inferctl quickstart` uses, with its log in a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/main.js next to dist/cli/. */
export const SERVER_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
/** The package root (where the default `config/server.yaml` and `models/demo.gguf` live). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the server until it exits; signals sent to inferctl are passed on. Resolves to its exit code. */
export function serveForeground(env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, [SERVER_MAIN], { env: { ...process.env, ...env }, stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => () => {
    // Ctrl-C on a terminal reaches the whole process group, the child too: a second SIGINT is
    // harmless (shutdown runs once), and a `kill` aimed at inferctl alone must still stop the server.
    if (child.exitCode === null) child.kill(signal);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1));
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal as string];
}

/**
 * Starts the server detached from this process (it outlives inferctl), writing its output to
 * `logFile`, in `cwd` (the package root, so the demo model lands in the clone's models/).
 */
export function serveDetached(env: Record<string, string>, logFile: string, cwd = PACKAGE_ROOT): ChildProcess {
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(process.execPath, [SERVER_MAIN], { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}
