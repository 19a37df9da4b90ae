/**
 * Loopback clients for bench/policy-cost.ts, with request headers (the API key) that bench/load.ts
 * does not send:
 *
 * - `KeepAliveClient`: node:http over one kept-alive socket, for short sequential round trips
 *   (`GET /v1/models`, `max_tokens: 1` completions). Leaner than fetch, so the client's own cost
 *   adds less noise to a sub-millisecond difference.
 * - `streamTimed`: one streaming `POST /v1/completions` over fetch, SSE parsed by hand like
 *   load.ts, timing both the first SSE data event and the first chunk with non-empty text.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { completionEvents, describeError } from './sse.js';

export interface RoundTrip {
  status: number;
  ms: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class KeepAliveClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly url: URL;

  constructor(
    baseUrl: string,
    private readonly headers: Record<string, string>,
  ) {
    this.url = new URL(baseUrl);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(this.url.hostname)) throw new Error(`loopback only, got ${baseUrl}`);
  }

  request(method: 'GET' | 'POST' | 'PUT', path: string, body: unknown, timeoutMs: number, extraHeaders: Record<string, string> = {}): Promise<RoundTrip> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { ...this.headers, ...extraHeaders };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request(
        { host: this.url.hostname, port: this.url.port, path, method, agent: this.agent, headers, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface StreamResult {
  ok: boolean;
  startMs: number;
  /** ms from send to the first SSE `data:` event (headers and first frame through). */
  firstEventMs: number;
  /** ms from send to the first chunk with non-empty text (the TTFT a user sees). */
  ttftMs: number;
  endMs: number;
  promptTokens: number;
  completionTokens: number;
  error?: string;
}

export async function streamTimed(
  baseUrl: string,
  headers: Record<string, string>,
  prompt: string,
  maxTokens: number,
  signal: AbortSignal,
  /** Greedy when absent; a fixed seed gives every side the same sampled text for the same prompt. */
  sampling?: { temperature: number; seed: number },
): Promise<StreamResult> {
  const startMs = performance.now();
  const r: StreamResult = { ok: false, startMs, firstEventMs: Number.NaN, ttftMs: Number.NaN, endMs: startMs, promptTokens: 0, completionTokens: 0 };
  try {
    const res = await fetch(`${baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true }, ignore_eos: true, ...(sampling ?? { temperature: 0 }) }),
      signal,
    });
    if (!res.ok || res.body === null) {
      r.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
      return r;
    }
    let done = false;
    for await (const e of completionEvents(res.body)) {
      if (Number.isNaN(r.firstEventMs)) r.firstEventMs = e.at - startMs;
      if (e.kind === 'done') done = true;
      if (e.kind === 'error') r.error = e.message;
      if (e.kind !== 'chunk') continue;
      const { chunk, at } = e;
      if (Number.isNaN(r.ttftMs) && (chunk.choices?.[0]?.text ?? '') !== '') r.ttftMs = at - startMs;
      if (chunk.usage) {
        r.promptTokens = chunk.usage.prompt_tokens;
        r.completionTokens = chunk.usage.completion_tokens;
      }
    }
    r.endMs = performance.now();
    if (r.error === undefined && !done) r.error = 'stream ended without [DONE]';
    else if (r.error === undefined && r.completionTokens !== maxTokens) r.error = `usage.completion_tokens ${r.completionTokens} != ${maxTokens}`;
    else if (r.error === undefined && Number.isNaN(r.ttftMs)) r.error = 'no chunk with text';
    r.ok = r.error === undefined;
    return r;
  } catch (err) {
    r.endMs = performance.now();
    r.error = describeError(err);
    return r;
  }
}
