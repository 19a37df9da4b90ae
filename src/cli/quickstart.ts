/**
 * `inferctl quickstart`: one command from a fresh clone to a streamed chat. When a server answers
 * at the target URL it is used as it is; otherwise (loopback URLs only) the server is started
 * detached in the package root with the built-in demo model, which it generates on first start
 * (no download), its log going to a file whose path is printed, and we wait for /readyz.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, EXIT, startHint, type Connection } from './client.js';
import { serveDetached } from './serve.js';

export interface QuickstartOptions {
  model?: string;
  /** Seconds to wait for the new server's /readyz. */
  wait?: number;
  log?: string;
}

async function answers(c: Connection, path: string): Promise<number | null> {
  try {
    const res = await fetch(`${c.baseUrl}${path}`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return null;
  }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ensures a ready server at `c.baseUrl`; returns what was done, for the caller to print. */
export async function ensureServer(c: Connection, o: QuickstartOptions, note: (t: string) => void): Promise<void> {
  if ((await answers(c, '/healthz')) !== null) {
    note(`using the server at ${c.baseUrl}`);
    return waitReady(c, o.wait ?? 120, null, '');
  }
  const u = new URL(c.baseUrl);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) || u.protocol !== 'http:') {
    throw new CliError(`nothing answers at ${c.baseUrl}, and quickstart only starts servers on this machine (http://127.0.0.1)`, EXIT.unreachable, startHint(c.baseUrl));
  }
  const port = u.port === '' ? '80' : u.port;
  const log = o.log ?? join(tmpdir(), `inferflux-quickstart-${port}.log`);
  const env: Record<string, string> = { INFERFLUX_HOST: u.hostname === 'localhost' ? '127.0.0.1' : u.hostname.replace(/^\[|\]$/g, ''), INFERFLUX_PORT: port };
  if (o.model !== undefined) env.INFERFLUX_MODEL_PATH = o.model;
  const child = serveDetached(env, log);
  note(`no server at ${c.baseUrl}: started one (pid ${child.pid}${o.model ? `, model ${o.model}` : ', the demo model, generated on first start'})`);
  note(`server log: ${log}   stop it with: kill ${child.pid}`);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  await waitReady(c, o.wait ?? 120, () => exited, log);
}

async function waitReady(c: Connection, seconds: number, exitCode: (() => number | null) | null, log: string): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if ((await answers(c, '/readyz')) === 200) return;
    const code = exitCode?.();
    if (code !== null && code !== undefined) throw new CliError(`the server exited with code ${code} before it was ready`, EXIT.server, `read its log: ${log}`);
    await delay(250);
  }
  throw new CliError(`${c.baseUrl} was not ready within ${seconds} s`, EXIT.server, log ? `read the server log: ${log}` : 'inferctl status shows which pool is down');
}
