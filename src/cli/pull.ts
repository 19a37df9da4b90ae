/**
 * `inferctl pull`, `inferctl rm` and `inferctl models list --local`: the local models directory,
 * managed directly (no server needed), through the same download module as `POST /api/pull`.
 * Progress goes to stderr: a bar with size, speed and ETA on a terminal, plain lines otherwise
 * (logs and CI); the result goes to stdout (`--json`: the stored model's manifest).
 */
import { SingleBar } from 'cli-progress';
import { loadConfig } from '../config/load.js';
import { InferFluxError } from '../errors.js';
import { ModelStore, type StoredModel } from '../runtime/models/model-store.js';
import { pullModel, type PullEvent, type PullSettings } from '../runtime/models/pull.js';
import { CliError, EXIT, type ExitCode } from './client.js';
import type { Output } from './generate.js';

export interface LocalOptions {
  modelsDir?: string;
  json?: boolean;
}

export interface PullOptions extends LocalOptions {
  quant?: string;
  sha256?: string;
  name?: string;
}

/** Models directory, hub and allow-list: flags, then the server's config (file + INFERFLUX_* env). */
export function pullSettings(o: LocalOptions, env: NodeJS.ProcessEnv = process.env): PullSettings {
  let config;
  try {
    config = loadConfig({ env });
  } catch (err) {
    throw new CliError(`the configuration does not load: ${err instanceof Error ? err.message : String(err)}`, EXIT.usage, 'fix the key named above (config/server.yaml, INFERFLUX_CONFIG or the INFERFLUX_* variable)');
  }
  return {
    modelsDir: o.modelsDir ?? config.server.modelsDir,
    hubUrl: config.pull.hubUrl,
    token: config.pull.hubToken,
    net: { allowedPrivateHosts: config.pull.allowedPrivateHosts },
  };
}

const NEXT: Partial<Record<string, [ExitCode, string]>> = {
  invalid_request: [EXIT.usage, 'see inferctl pull --help for the reference forms and flags'],
  hub_access_denied: [EXIT.auth, 'set HF_TOKEN to a hub access token that can read this repository (and accept its terms on the hub if it is gated), then pull again'],
  model_not_found: [EXIT.notFound, 'check the repository on the hub; owner/repo:QUANT with one of the quants listed, or list local models with: inferctl models list --local'],
  download_failed: [EXIT.server, 'run the same inferctl pull again: it resumes from the partial file'],
  digest_mismatch: [EXIT.server, 'the file or the digest is wrong: check --sha256 and pull again (the bad file was removed)'],
  download_refused: [EXIT.server, 'to allow a private or loopback host, set INFERFLUX_PULL_ALLOWED_HOSTS (pull.allowed_private_hosts)'],
  invalid_model_file: [EXIT.server, 'this file cannot be served: pick another quant or file'],
  pull_in_progress: [EXIT.server, 'wait for the other pull of this model to finish'],
};

function cliError(err: unknown): unknown {
  if (!(err instanceof InferFluxError)) return err;
  const [exit, hint] = NEXT[err.code] ?? [EXIT.server, 'see the message above'];
  return new CliError(`${err.message} (${err.code})`, exit, hint);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.ceil(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}

/** Renders pull events: a cli-progress bar on a terminal, a line per second (and per state) otherwise. */
function progressView(io: Output, bar: NodeJS.WriteStream | null): (ev: PullEvent) => void {
  let single: SingleBar | null = null;
  let lastLine = 0;
  return (ev) => {
    switch (ev.kind) {
      case 'resolving':
        io.err(`pulling ${ev.ref}: reading the file listing\n`);
        return;
      case 'resolved':
        io.err(`file ${ev.file}${ev.size !== null ? ` (${formatBytes(ev.size)})` : ''}${ev.sha256 ? `, sha256 ${ev.sha256}` : ', no published digest (pass --sha256 to verify)'}\n`);
        return;
      case 'attempt':
        // A line under a live bar would be drawn over: end the bar, the next progress starts one.
        single?.stop();
        single = null;
        if (ev.offset > 0) io.err(`resuming at ${formatBytes(ev.offset)}${ev.attempt > 1 ? ` (attempt ${ev.attempt})` : ''}\n`);
        return;
      case 'progress': {
        const line = `${formatBytes(ev.completed)}${ev.total !== null ? ` / ${formatBytes(ev.total)}` : ''}  ${formatBytes(ev.bytesPerSecond)}/s  ETA ${formatEta(ev.etaSeconds)}`;
        if (bar && ev.total !== null) {
          single ??= new SingleBar({ stream: bar, format: '{bar} {percentage}% | {line}', hideCursor: true, clearOnComplete: true, barsize: 30 });
          if (!single.isActive) single.start(ev.total, ev.completed, { line });
          single.update(ev.completed, { line });
          return;
        }
        const now = Date.now();
        const finished = ev.total !== null && ev.completed >= ev.total;
        if (now - lastLine >= 1000 || finished) {
          lastLine = now;
          io.err(`${line}${ev.total ? ` (${Math.floor((ev.completed * 100) / ev.total)}%)` : ''}\n`);
        }
        return;
      }
      case 'verifying':
        single?.stop();
        single = null;
        io.err('verifying sha256 digest\n');
        return;
      case 'validating':
        io.err('checking the GGUF\n');
        return;
      case 'writing':
        single?.stop();
        single = null;
        return;
      case 'done':
        return;
      default: {
        const never: never = ev;
        return never;
      }
    }
  };
}

export async function runPull(ref: string, o: PullOptions, io: Output): Promise<void> {
  const settings = pullSettings(o);
  const tty = process.stderr.isTTY === true && !o.json ? process.stderr : null;
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  let model: StoredModel;
  try {
    model = await pullModel(settings, { ref, quant: o.quant, sha256: o.sha256, name: o.name, signal: abort.signal, onEvent: progressView(io, tty) });
  } catch (err) {
    throw cliError(err);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  if (o.json) io.out(JSON.stringify(model, null, 2) + '\n');
  else io.out(`pulled ${model.name} (${formatBytes(model.size)}, sha256 ${model.sha256})\n  ${model.path}\n  serve it with: inferctl serve --model ${model.path}\n`);
}

export async function runRemove(name: string, o: LocalOptions, io: Output): Promise<void> {
  const store = new ModelStore(pullSettings(o).modelsDir);
  let removed: StoredModel;
  try {
    removed = await store.remove(name);
  } catch (err) {
    throw cliError(err);
  }
  if (o.json) io.out(JSON.stringify({ removed: removed.name, sha256: removed.sha256 }) + '\n');
  else io.out(`removed ${removed.name}\n`);
}

export async function runLocalList(o: LocalOptions, io: Output): Promise<void> {
  const store = new ModelStore(pullSettings(o).modelsDir);
  const models = await store.list();
  if (o.json) {
    io.out(JSON.stringify({ models_dir: store.dir, models }, null, 2) + '\n');
    return;
  }
  if (models.length === 0) {
    io.out(`no models in ${store.dir}\n  pull one with: inferctl pull owner/repo:Q4_K_M\n`);
    return;
  }
  const width = Math.max(...models.map((m) => m.name.length), 4);
  io.out(`${'NAME'.padEnd(width)}  ${'SIZE'.padStart(10)}  ${'QUANT'.padEnd(8)}  PULLED\n`);
  for (const m of models) io.out(`${m.name.padEnd(width)}  ${formatBytes(m.size).padStart(10)}  ${(m.quant ?? '-').padEnd(8)}  ${m.pulled_at}\n`);
  io.out(`(${store.dir})\n`);
}
