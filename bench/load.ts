/**
 * Bounded streaming load against the server: `clients` concurrent loops, each sending
 * `requestsPerClient` streaming `POST /v1/completions` one after another. Every request is bounded
 * by the level's deadline (AbortSignal), nothing is retried; failures are counted and described.
 *
 * Uses Node's global fetch (undici). Its default keep-alive timeout (4 s) is shorter than the
 * server's idle timeout (10 s), so the client always drops an idle connection before the server
 * does. llama-server (cpp-httplib) also closes a connection after its 100th request
 * (CPPHTTPLIB_KEEPALIVE_MAX_COUNT), and a request sent on it then fails before any response
 * (`UND_ERR_SOCKET other side closed`): that one request is sent again once on a new connection
 * and counted (`resent`), since it never reached a server that could answer it. A failure after
 * the response started is never retried.
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
  /** Prompt tokens the server reused from its cache (`usage.prompt_tokens_details.cached_tokens`; 0 when not reported). */
  cachedTokens: number;
  completionTokens: number;
  /** The generated text (the next turn of a conversation appends it). */
  text: string;
  /** Sent a second time after its keep-alive connection was closed before any response (see above). */
  resent: boolean;
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
  /** Conversations only: text every conversation opens with (a shared system prompt). */
  system?: string;
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
  const r: RequestResult = { ok: false, startMs, ttftMs: Number.NaN, endMs: startMs, promptTokens: 0, cachedTokens: 0, completionTokens: 0, text: '', resent: false };
  const send = (): Promise<Response> =>
    fetch(`${baseUrl}/v1/completions`, {
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
  try {
    let res: Response;
    try {
      res = await send();
    } catch (err) {
      if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET' || signal.aborted) throw err;
      r.resent = true;
      res = await send();
    }
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
      const piece = chunk.choices?.[0]?.text ?? '';
      if (Number.isNaN(r.ttftMs) && piece !== '') r.ttftMs = now() - startMs;
      r.text += piece;
      if (chunk.usage) {
        r.promptTokens = chunk.usage.prompt_tokens;
        r.cachedTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
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
  return runClients(o, async (c, signal) => {
    const out: RequestResult[] = [];
    for (let i = 0; i < o.requestsPerClient; i++) {
      if (signal.aborted) break;
      out.push(await streamCompletion(o.baseUrl, o.prompts[c]![i]!, o.maxTokens, signal, o.extraBody));
    }
    return out;
  });
}

/**
 * Multi-turn conversations, one per client, as plain text (`User: ...\nAssistant:`): turn k's
 * prompt is turn k-1's prompt, its answer and the next user message, so a server that keeps (or
 * caches) the previous turn's KV prefills only the new part. `prompts[client]` = the opening
 * message, then one follow-up per further turn; `requestsPerClient` = turns; `system` opens every one.
 */
export async function runConversations(o: LoadOptions): Promise<LevelResult> {
  return runClients(o, async (c, signal) => {
    const out: RequestResult[] = [];
    let history = `${o.system ?? ''}User: ${o.prompts[c]![0]!}\nAssistant:`;
    for (let t = 0; t < o.requestsPerClient; t++) {
      if (signal.aborted) break;
      const r = await streamCompletion(o.baseUrl, history, o.maxTokens, signal, o.extraBody);
      out.push(r);
      if (!r.ok) break;
      history += `${r.text}\nUser: ${o.prompts[c]![t + 1] ?? ''}\nAssistant:`;
    }
    return out;
  });
}

async function runClients(o: LoadOptions, client: (c: number, signal: AbortSignal) => Promise<RequestResult[]>): Promise<LevelResult> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  const t0 = now();
  const perClient = await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c, signal)));
  const requests = perClient.flat();
  const last = requests.reduce((m, r) => Math.max(m, r.endMs), t0);
  const errors = requests.filter((r) => !r.ok).map((r) => r.error ?? 'unknown');
  const missing = o.clients * o.requestsPerClient - requests.length;
  if (missing > 0) errors.push(`${missing} request(s) not sent: the level hit its ${o.timeoutMs} ms cap, or a failed turn ended its conversation`);
  return { clients: o.clients, wallMs: last - t0, requests, errors };
}
