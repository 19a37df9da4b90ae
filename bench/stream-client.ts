/**
 * One streaming `POST /v1/completions` that keeps what the scenario benchmarks need: the arrival
 * time of every content chunk (inter-token latency), the usage with `cached_tokens` (prefix
 * reuse), the generated text (multi-turn traces), and the caller's headers (API key, priority).
 * `load.ts` stays the lean client of `run.ts`; this one records more per request.
 *
 * Nothing is retried. An abort through `signal` ends the request with `aborted: true`, which the
 * caller may treat as the intended end (a stream stopped once its measurement window closed).
 */
import { performance } from 'node:perf_hooks';
import { completionEvents, describeError } from './sse.js';

export interface StreamRequest {
  baseUrl: string;
  /** Text, or token ids (sent as is: the server adds no BOS to token prompts). */
  prompt: string | number[];
  maxTokens: number;
  headers?: Record<string, string>;
  signal: AbortSignal;
  /** Called with performance.now() at each content chunk. */
  onChunk?: (atMs: number) => void;
}

export interface StreamResult {
  ok: boolean;
  aborted: boolean;
  startMs: number;
  /** performance.now() of every SSE chunk with non-empty text. */
  chunkMs: number[];
  ttftMs: number;
  endMs: number;
  text: string;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  error?: string;
}

export async function streamRequest(q: StreamRequest): Promise<StreamResult> {
  const startMs = performance.now();
  const r: StreamResult = {
    ok: false, aborted: false, startMs, chunkMs: [], ttftMs: Number.NaN, endMs: startMs, text: '',
    promptTokens: 0, cachedTokens: 0, completionTokens: 0,
  };
  try {
    const res = await fetch(`${q.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...q.headers },
      body: JSON.stringify({
        prompt: q.prompt,
        max_tokens: q.maxTokens,
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true,
        temperature: 0,
      }),
      signal: q.signal,
    });
    if (!res.ok || res.body === null) {
      r.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
      r.endMs = performance.now();
      return r;
    }
    let done = false;
    for await (const e of completionEvents(res.body)) {
      if (e.kind === 'done') done = true;
      if (e.kind === 'error') r.error = e.message;
      if (e.kind !== 'chunk') continue;
      const { chunk, at } = e;
      const text = chunk.choices?.[0]?.text ?? '';
      if (text !== '') {
        if (Number.isNaN(r.ttftMs)) r.ttftMs = at - startMs;
        r.chunkMs.push(at);
        r.text += text;
        q.onChunk?.(at);
      }
      if (chunk.usage) {
        r.promptTokens = chunk.usage.prompt_tokens;
        r.completionTokens = chunk.usage.completion_tokens;
        r.cachedTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
      }
    }
    r.endMs = performance.now();
    if (r.error === undefined && !done) r.error = 'stream ended without [DONE]';
    else if (r.error === undefined && r.completionTokens !== q.maxTokens) r.error = `usage.completion_tokens ${r.completionTokens} != ${q.maxTokens}`;
    r.ok = r.error === undefined;
    return r;
  } catch (err) {
    r.endMs = performance.now();
    if (q.signal.aborted) {
      r.aborted = true;
      return r;
    }
    r.error = describeError(err);
    return r;
  }
}
