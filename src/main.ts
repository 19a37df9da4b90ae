#!/usr/bin/env node
/**
 * Entry point. `--help`, `--version` and flag errors are answered here (flags become the
 * INFERFLUX_* variables they name, src/config/server-flags.ts). Then, by default, this process is
 * the supervisor (src/supervisor.ts) and the server runs in a child it restarts after a native
 * crash; `INFERFLUX_SUPERVISE=0` runs the server in this process (what the supervisor itself sets
 * for its child, and what to set where something else already supervises: systemd, Kubernetes,
 * tests that signal the server's own pid).
 */
import { fileURLToPath } from 'node:url';
import { handleServerArgv } from './config/server-flags.js';

if (!handleServerArgv(process.argv.slice(2))) {
  if (process.env.INFERFLUX_SUPERVISE === '0') {
    const { runServer } = await import('./serve.js');
    runServer();
  } else {
    const { runSupervisor } = await import('./supervisor.js');
    runSupervisor(fileURLToPath(import.meta.url));
  }
}
