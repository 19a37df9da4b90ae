/**
 * Bounded streaming load against the server: `clients` concurrent loops, each sending
 * `requestsPerClient` streaming `POST /v1/completions` one after another. Every request is bounded
 * by the level's deadline (AbortSignal), nothing is retried; failures are counted and described.
 *
 * Uses Node's global fetch (undici). Its default keep-alive timeout (4 s) is shorter than the
 * server's idle timeout (10 s), so the client always drops an idle connection before the server
 * does; that avoids the `UND_ERR_SOCKET other side closed` race seen against llama-server.
 */
import { performance } from 'node:perf_hooks';
import { completionEvents, describeError } from './sse.js';

export interface RequestResult {
  ok: boolean;
  startMs: number;
  /** ms from send to the first chunk with non-empty text; NaN if none arrived. */
  ttftMs: number;
  endMs: number;
  promptTokens: number;
  completionTokens: number;
  error?: string;
}

export interface LevelResult {
  clients: number;
  wallMs: number;
  requests: RequestResult[];
  errors: string[];
}

export interface LoadOptions {
  baseUrl: string;
  clients: number;
  requestsPerClient: number;
  /** prompts[client][i] is the i-th prompt of that client. */
  prompts: string[][];
  maxTokens: number;
  /** Hard cap for the whole level, in ms. */
  timeoutMs: number;
  /** Fields added to every request body (llama-server's `cache_prompt`). */
  extraBody?: Record<string, unknown>;
}

const now = (): number => performance.now();

/** One streaming completion; parses the SSE stream by hand (data lines, `[DONE]`, `error` events). */
export async function streamCompletion(
  baseUrl: string,
  prompt: string,
  maxTokens: number,
  signal: AbortSignal,
  extraBody: Record<string, unknown> = {},
): Promise<RequestResult> {
  const startMs = now();
  const r: RequestResult = { ok: false, startMs, ttftMs: Number.NaN, endMs: startMs, promptTokens: 0, completionTokens: 0 };
  try {
    const res = await fetch(`${baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt,
        max_tokens: maxTokens,
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true,
        temperature: 0,
        ...extraBody,
      }),
      signal,
    });
    if (!res.ok || res.body === null) {
      r.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
      return r;
    }
    let done = false;
    for await (const e of completionEvents(res.body)) {
      if (e.kind === 'done') done = true;
      if (e.kind === 'error') r.error = e.message;
      if (e.kind !== 'chunk') continue;
      const { chunk } = e;
      if (Number.isNaN(r.ttftMs) && (chunk.choices?.[0]?.text ?? '') !== '') r.ttftMs = now() - startMs;
      if (chunk.usage) {
        r.promptTokens = chunk.usage.prompt_tokens;
        r.completionTokens = chunk.usage.completion_tokens;
      }
    }
    r.endMs = now();
    if (r.error === undefined && !done) r.error = 'stream ended without [DONE]';
    else if (r.error === undefined && r.completionTokens !== maxTokens) r.error = `usage.completion_tokens ${r.completionTokens} != ${maxTokens}`;
    r.ok = r.error === undefined;
    return r;
  } catch (err) {
    r.endMs = now();
    r.error = describeError(err);
    return r;
  }
}

export async function runLevel(o: LoadOptions): Promise<LevelResult> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  const t0 = now();
  const perClient = await Promise.all(
    Array.from({ length: o.clients }, async (_, c) => {
      const out: RequestResult[] = [];
      for (let i = 0; i < o.requestsPerClient; i++) {
        if (signal.aborted) break;
        out.push(await streamCompletion(o.baseUrl, o.prompts[c]![i]!, o.maxTokens, signal, o.extraBody));
      }
      return out;
    }),
  );
  const requests = perClient.flat();
  const last = requests.reduce((m, r) => Math.max(m, r.endMs), t0);
  const errors = requests.filter((r) => !r.ok).map((r) => r.error ?? 'unknown');
  const missing = o.clients * o.requestsPerClient - requests.length;
  if (missing > 0) errors.push(`${missing} request(s) not sent: level hit its ${o.timeoutMs} ms cap`);
  return { clients: o.clients, wallMs: last - t0, requests, errors };
}
