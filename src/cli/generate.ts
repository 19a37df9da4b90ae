/**
 * `inferctl completion` and `inferctl chat` (one shot, or `--interactive`: a multi-turn session
 * that keeps the transcript), through the `openai` client against the server's `/v1` API, so the
 * CLI exercises exactly what any OpenAI client sees. `--stream` prints text as it is generated.
 */
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { CliError, numberFlag, serverError, timedOut, unreachable, type Connection } from './client.js';

export interface SamplingOptions {
  model?: string;
  maxTokens?: string;
  temperature?: string;
  seed?: string;
  ignoreEos?: boolean;
  stream?: boolean;
  json?: boolean;
}

export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

export function client(c: Connection): OpenAI {
  // The SDK insists on a key; without one the Authorization header is removed (a null default
  // header), so the server sees no credentials rather than a bogus `Bearer none`.
  return new OpenAI({
    baseURL: `${c.baseUrl}/v1`,
    apiKey: c.apiKey ?? 'unused',
    defaultHeaders: c.apiKey ? undefined : { Authorization: null },
    timeout: c.timeoutMs,
    maxRetries: 0,
  });
}

/** Request fields from the flags; an absent flag is left to the server's default. */
function sampling(o: SamplingOptions) {
  const fields = {
    model: o.model,
    max_tokens: numberFlag('max-tokens', o.maxTokens, { integer: true, min: 1 }),
    temperature: numberFlag('temperature', o.temperature, { min: 0 }),
    seed: numberFlag('seed', o.seed, { integer: true }),
    // A llama.cpp extension the server accepts: generate exactly max_tokens (benchmarks, long answers).
    ...(o.ignoreEos ? { ignore_eos: true } : {}),
  };
  // No `model`: the server's default model answers (the SDK's types require the field; JSON drops undefined).
  return fields as typeof fields & { model: string };
}

/** The SDK's errors as one line, with the server's OpenAI-shaped message when there is one. */
export function describeApiError(c: Connection, err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof OpenAI.APIConnectionTimeoutError) return timedOut(c);
  // The SDK wraps the failed fetch.
  if (err instanceof OpenAI.APIConnectionError) return unreachable(c, err.cause);
  if (err instanceof OpenAI.APIError) {
    const body = err.error as { message?: string; code?: string; type?: string } | undefined;
    if (err.status === undefined) return new CliError(`the server ended the stream with an error: ${body?.message ?? err.message}`);
    return serverError(err.status, body, err.message, c);
  }
  return new CliError(err instanceof Error ? err.message : String(err));
}

export async function runCompletion(c: Connection, prompt: string, o: SamplingOptions, io: Output): Promise<void> {
  const api = client(c);
  try {
    if (o.stream) {
      const stream = await api.completions.create({ ...sampling(o), prompt, stream: true });
      for await (const chunk of stream) io.out(chunk.choices[0]?.text ?? '');
      io.out('\n');
      return;
    }
    const r = await api.completions.create({ ...sampling(o), prompt });
    io.out(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${r.choices[0]?.text ?? ''}\n`);
  } catch (err) {
    throw describeApiError(c, err);
  }
}

const ROLES = ['system', 'user', 'assistant'] as const;

/** `user:Hello`, `system:Be brief`, or plain `Hello` (a user message). */
export function parseMessage(spec: string): ChatCompletionMessageParam {
  const m = /^(system|user|assistant):(.*)$/s.exec(spec);
  if (!m) return { role: 'user', content: spec };
  return { role: m[1] as (typeof ROLES)[number], content: m[2]! } as ChatCompletionMessageParam;
}

/** One chat turn; returns the assistant's text so a session can append it to the transcript. */
export async function chatTurn(api: OpenAI, c: Connection, messages: ChatCompletionMessageParam[], o: SamplingOptions, io: Output, signal?: AbortSignal): Promise<string> {
  try {
    if (o.stream) {
      let text = '';
      const stream = await api.chat.completions.create({ ...sampling(o), messages, stream: true }, { signal });
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta.content ?? '';
        text += delta;
        io.out(delta);
      }
      // The SDK ends the iteration quietly when the request is aborted: a cut answer is no answer.
      if (signal?.aborted) throw new OpenAI.APIUserAbortError();
      io.out('\n');
      return text;
    }
    const r = await api.chat.completions.create({ ...sampling(o), messages });
    const text = r.choices[0]?.message.content ?? '';
    io.out(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${text}\n`);
    return text;
  } catch (err) {
    // A cancelled turn (Ctrl-C in a session) is not an error of the server's; the caller decides.
    if (err instanceof OpenAI.APIUserAbortError) throw err;
    throw describeApiError(c, err);
  }
}

export async function runChat(c: Connection, messages: ChatCompletionMessageParam[], o: SamplingOptions, io: Output): Promise<void> {
  if (!messages.some((m) => m.role === 'user')) throw new CliError('chat needs a user message: --message "user:Hello"', 2);
  await chatTurn(client(c), c, messages, o, io);
}
