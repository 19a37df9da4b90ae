/**
 * `inferctl status` and `inferctl models list|show`: what a server serves and how it is doing,
 * from /healthz, /readyz (pools), /metrics (queue depth, running sequences) and the model routes.
 * Text for people, `--json` for scripts (the same facts).
 */
import { authHeaders, CliError, parsedError, requestJson, serverError, timedOut, unreachable, type Connection } from './client.js';
import type { Output } from './generate.js';

interface PoolReport {
  name: string;
  workers: number;
  ready: number;
  restarts: number;
}

interface ReadyReport {
  ready?: boolean;
  models?: { id: string; ready: boolean }[];
  pools?: PoolReport[];
}

export interface StatusReport {
  server: string;
  health: string;
  ready: boolean;
  models: { id: string; ready: boolean }[];
  pools: PoolReport[];
  /** Per model: requests waiting for a sequence, and sequences running. Null when /metrics was refused. */
  queue: { model: string; waiting: number; running: number }[] | null;
  /** Why `queue` is null. */
  metrics_error?: string;
}

/** Sums samples of `name` by their `model` label from a Prometheus text page. */
export function samplesByModel(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const model = /(?:^|,)model="([^"]*)"/.exec(m[1]!)?.[1];
    if (model === undefined) continue;
    out.set(model, (out.get(model) ?? 0) + Number(m[2]));
  }
  return out;
}

/** A GET whose body is wanted for the statuses in `ok` too (not only 2xx). */
async function get(c: Connection, path: string, ok: number[]): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${c.baseUrl}${path}`, { headers: authHeaders(c), signal: AbortSignal.timeout(c.timeoutMs) });
  } catch (err) {
    throw err instanceof Error && err.name === 'TimeoutError' ? timedOut(c) : unreachable(c, err);
  }
  const text = await res.text();
  if (!ok.includes(res.status)) throw serverError(res.status, parsedError(text), text, c);
  return text;
}

async function getJson<T>(c: Connection, path: string, ok: number[]): Promise<T> {
  const text = await get(c, path, ok);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CliError(`GET ${path}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
}

export async function status(c: Connection): Promise<StatusReport> {
  const health = await requestJson<{ status?: string }>(c, 'GET', '/healthz');
  // /readyz answers 503 with the same report while a pool is down: that report is the point.
  const ready = await getJson<ReadyReport>(c, '/readyz', [200, 503]);
  const report: StatusReport = {
    server: c.baseUrl,
    health: health.body.status ?? 'ok',
    ready: ready.ready === true,
    models: ready.models ?? [],
    pools: ready.pools ?? [],
    queue: null,
  };
  try {
    const text = await get(c, '/metrics', [200]);
    const waiting = samplesByModel(text, 'inferflux_scheduler_queue_depth');
    const running = samplesByModel(text, 'inferflux_active_sequences');
    report.queue = report.models.map((m) => ({ model: m.id, waiting: waiting.get(m.id) ?? 0, running: running.get(m.id) ?? 0 }));
  } catch (err) {
    report.metrics_error = err instanceof Error ? err.message : String(err);
  }
  return report;
}

export async function runStatus(c: Connection, o: { json?: boolean }, io: Output): Promise<boolean> {
  const r = await status(c);
  if (o.json) {
    io.out(`${JSON.stringify(r, null, 2)}\n`);
    return r.ready;
  }
  io.out(`server  ${r.server}\n`);
  io.out(`health  ${r.health}\n`);
  io.out(`ready   ${r.ready ? 'yes' : 'no'}\n`);
  for (const m of r.models) io.out(`model   ${m.id}${m.ready ? '' : ' (not ready)'}\n`);
  for (const p of r.pools) io.out(`pool    ${p.name}: ${p.ready}/${p.workers} worker(s) ready, ${p.restarts} restart(s)\n`);
  if (r.queue) for (const q of r.queue) io.out(`queue   ${q.model}: ${q.waiting} waiting, ${q.running} running\n`);
  else io.out(`queue   unknown (${r.metrics_error})\n`);
  if (!r.ready) io.err('inferctl: the server is not ready\n  next: a pool above is down or still loading; see the server log\n');
  return r.ready;
}

export async function runModelsList(c: Connection, o: { json?: boolean }, io: Output): Promise<void> {
  const r = await requestJson<{ data: { id: string; owned_by?: string }[] }>(c, 'GET', '/v1/models');
  if (o.json) return io.out(`${JSON.stringify(r.body.data, null, 2)}\n`);
  for (const m of r.body.data) io.out(`${m.id}\n`);
}

/** One model: the LM Studio-style view, which adds architecture, context length and load state. */
export async function runModelsShow(c: Connection, id: string, o: { json?: boolean }, io: Output): Promise<void> {
  const m = (await requestJson<Record<string, unknown>>(c, 'GET', `/api/v0/models/${encodeURIComponent(id)}`)).body;
  if (o.json) return io.out(`${JSON.stringify(m, null, 2)}\n`);
  const rows: [string, unknown][] = [
    ['id', m.id],
    ['state', m.state],
    ['arch', m.arch],
    ['format', m.compatibility_type],
    ['context', m.max_context_length],
    ['publisher', m.publisher],
  ];
  for (const [k, v] of rows) if (v !== undefined) io.out(`${k.padEnd(9)} ${String(v)}\n`);
}
