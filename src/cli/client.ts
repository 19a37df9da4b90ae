/**
 * How `inferctl` reaches a server: the base URL (`--url`, or `--host`/`--port`, or
 * `INFERCTL_URL`), the API key (`--api-key` or `INFERCTL_API_KEY`, sent as a Bearer token), and a
 * JSON request helper that turns the server's OpenAI-shaped errors and unreachable servers into
 * one error type the commands print.
 */

export interface Connection {
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
}

export interface GlobalOptions {
  url?: string;
  host?: string;
  port?: string;
  apiKey?: string;
  timeout?: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/**
 * Exit codes a script can rely on. Unreachable (5) is "nothing answered at that address"; a
 * timeout is the server failing to answer (1).
 */
export const EXIT = { ok: 0, server: 1, usage: 2, auth: 3, notFound: 4, unreachable: 5 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI reports on one line, then `hint`: what to do next. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.server,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The error as the CLI prints it: `inferctl: message`, and the next step on its own line. */
export function formatError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const hint = err instanceof CliError ? err.hint : undefined;
  return `inferctl: ${message}\n${hint ? `  next: ${hint}\n` : ''}`;
}

export function connectionFrom(o: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Connection {
  let baseUrl: string;
  if (o.url !== undefined) {
    baseUrl = o.url;
  } else if (o.host !== undefined || o.port !== undefined) {
    const host = o.host ?? '127.0.0.1';
    baseUrl = `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${o.port ?? '8080'}`;
  } else {
    baseUrl = env.INFERCTL_URL ?? DEFAULT_URL;
  }
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    throw new CliError(`not a URL: ${baseUrl}`, 2);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`the server URL must be http(s)://, got ${baseUrl}`, 2);
  const seconds = o.timeout === undefined ? 600 : Number(o.timeout);
  if (!(seconds > 0)) throw new CliError(`--timeout must be a positive number of seconds, got ${o.timeout}`, 2);
  const apiKey = o.apiKey ?? env.INFERCTL_API_KEY;
  return { baseUrl: parsed.origin + parsed.pathname.replace(/\/+$/, ''), apiKey: apiKey === '' ? undefined : apiKey, timeoutMs: seconds * 1000 };
}

export function authHeaders(c: Connection): Record<string, string> {
  return c.apiKey ? { authorization: `Bearer ${c.apiKey}` } : {};
}

interface OpenAIErrorBody {
  error?: { message?: string; code?: string | null; type?: string };
}

// The three ways a request fails, as one line each; `fetch` here and the `openai` client in
// generate.ts report through the same three.

export function timedOut(c: Connection): CliError {
  return new CliError(`${c.baseUrl} did not answer within ${c.timeoutMs / 1000} s`, EXIT.server, 'raise --timeout, or check the server log for a stuck request');
}

/** How to start a server at `baseUrl`: a loopback URL gets the exact command, anything else the flag to check. */
export function startHint(baseUrl: string): string {
  const u = new URL(baseUrl);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  if (!loopback) return `check --url / INFERCTL_URL (${baseUrl}), or start the server there with: inferctl serve --host 0.0.0.0`;
  const port = u.port === '' ? (u.protocol === 'https:' ? '443' : '80') : u.port;
  return `start a server with: inferctl serve --port ${port}   (or: inferctl quickstart, for the demo model and a chat)`;
}

/** A failed `fetch` names the server and the cause (`ECONNREFUSED`, a TLS error), not just "fetch failed". */
export function unreachable(c: Connection, fetchError: unknown): CliError {
  const cause = fetchError instanceof Error && fetchError.cause instanceof Error ? fetchError.cause : undefined;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new CliError(
    `cannot reach ${c.baseUrl}: ${code ?? cause?.message ?? (fetchError instanceof Error ? fetchError.message : String(fetchError))}`,
    EXIT.unreachable,
    startHint(c.baseUrl),
  );
}

/** Exit code and next step for an HTTP error status and the server's error code. */
function classify(status: number, code: string | undefined, c?: Connection): { exit: ExitCode; hint: string } {
  if (status === 401) {
    return {
      exit: EXIT.auth,
      hint: c?.apiKey
        ? 'the key was refused: set INFERCTL_API_KEY (or --api-key) to a valid key, e.g. one from: inferctl admin api-keys --add NAME --scopes generate,read'
        : 'the server wants a key: set INFERCTL_API_KEY=<key> (or pass --api-key <key>)',
    };
  }
  if (status === 403) return { exit: EXIT.auth, hint: 'this key lacks the scope: use a key with the scope named above (admin commands need an admin key) in INFERCTL_API_KEY' };
  if (status === 404) {
    if (code === 'model_not_found') return { exit: EXIT.notFound, hint: 'list the served models with: inferctl models list' };
    if (code === 'api_key_not_found') return { exit: EXIT.notFound, hint: 'list the key ids with: inferctl admin api-keys --list' };
    return { exit: EXIT.notFound, hint: 'the server has no such route: check that --url / INFERCTL_URL points at an InferFlux server' };
  }
  if (status === 429) return { exit: EXIT.server, hint: 'rate limited: wait and retry (inferctl admin rate-limit shows the limits)' };
  if (code === 'insufficient_memory') return { exit: EXIT.server, hint: 'unload a model first (inferctl admin models --unload ID) or raise runtime.memory_budget_bytes' };
  if (code === 'model_unloading') return { exit: EXIT.server, hint: 'the model is being unloaded: pick another one (inferctl admin models --list)' };
  if (status === 503) return { exit: EXIT.server, hint: 'the server is not ready yet: inferctl status shows which pool is down' };
  if (status >= 500) return { exit: EXIT.server, hint: "see the server's log for the cause" };
  return { exit: EXIT.server, hint: 'fix the request as the message says; --help lists the flags' };
}

/** The server's OpenAI-shaped error as `message (code, HTTP status)`; `text` when the body was no such error. */
export function serverError(status: number, error: OpenAIErrorBody['error'], text = '', c?: Connection): CliError {
  const { exit, hint } = classify(status, error?.code ?? undefined, c);
  if (error?.message) return new CliError(`${error.message} (${error.code ?? error.type ?? 'error'}, HTTP ${status})`, exit, hint);
  return new CliError(`HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`, exit, hint);
}

export function parsedError(text: string): OpenAIErrorBody['error'] {
  try {
    const error = (JSON.parse(text) as OpenAIErrorBody | { error?: unknown } | null)?.error;
    // Ollama's routes answer `{"error": "message"}`.
    return typeof error === 'string' ? { message: error } : (error as OpenAIErrorBody['error']);
  } catch {
    return undefined; // Not JSON: a proxy's page or an empty body; the status says enough.
  }
}

/** One JSON round trip; non-2xx answers become a CliError carrying the server's message. */
export async function requestJson<T = Record<string, unknown>>(c: Connection, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(c.baseUrl + path, {
      method,
      headers: { ...authHeaders(c), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(c.timeoutMs),
    });
  } catch (err) {
    throw err instanceof Error && err.name === 'TimeoutError' ? timedOut(c) : unreachable(c, err);
  }
  const text = await res.text();
  if (!res.ok) throw serverError(res.status, parsedError(text), text, c);
  try {
    return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as T };
  } catch {
    throw new CliError(`${method} ${path}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
}

// ---- flags ---------------------------------------------------------------------------------------

/** A numeric flag, or undefined when absent; a usage error (exit 2) names the flag otherwise. */
export function numberFlag(name: string, v: string | undefined, rule: { integer?: boolean; min?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const what = `${rule.integer ? 'an integer' : 'a number'}${rule.min !== undefined ? ` >= ${rule.min}` : ''}`;
  if (v.trim() === '' || !Number.isFinite(n) || (rule.integer && !Number.isInteger(n)) || (rule.min !== undefined && n < rule.min)) {
    throw new CliError(`--${name} must be ${what}, got ${v}`, EXIT.usage);
  }
  return n;
}
