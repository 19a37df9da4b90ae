/**
 * `npm run bench:grammar`: what structured output costs, measured in one run on the bench model.
 *
 * 1. Decode throughput with a JSON-schema constraint vs without, same server, interleaved request
 *    by request. The constrained side asks for an answer of a fixed shape, ended by the grammar;
 *    the unconstrained side of each pair then generates exactly as many tokens as its constrained
 *    twin did (`max_tokens` = that count, `ignore_eos`), from a prompt of the same words in reverse
 *    order (the same length, but no shared prefix beyond the chat template's, so the prefix cache
 *    spares neither side its prefill), so both sides do the same work but for the grammar. Both
 *    stream. tok/s = completion tokens / summed request time (end to end); decode tok/s = tokens
 *    after the first / time from the first to the last token; ratio = constrained /
 *    unconstrained; target overhead < 5% (ratio >= 0.95). Two shapes, because the
 *    cost depends on whether the model's own pick fits the grammar: llama.cpp (node-llama-cpp's
 *    sampler) first samples freely and checks that one token, and only when it does not fit runs the
 *    grammar over the whole vocabulary (32000 tokens here) and samples again.
 *      - `numbers`: 24 bounded integers. The random model's pick almost never fits (worst case:
 *        the full pass on nearly every token).
 *      - `text`: one string of 150-200 characters. Most picks fit (any text but a quote or a
 *        control character), as with a trained model writing JSON.
 * 2. Grammar compile time per schema (the structured-output contract's 24 schemas): first compile
 *    and a cached repeat (by schema hash), in this process.
 *
 * Loopback only; every loop is bounded (pairs per level, a timeout per request).
 */
import { performance } from 'node:perf_hooks';
import { compileOutputConstraint } from '../src/generation/structured-output.js';
import { sseData } from './sse.js';
import { CONTRACT_SCHEMAS } from '../test/helpers/contract-schemas.js';
import { benchModel, provenance, randomWords, runBench, say, startServer, type BenchServer } from './server.js';
import { median } from './stats.js';

const PAIRS = Number(process.env.BENCH_GRAMMAR_PAIRS ?? 8);
const LEVELS = [1, 4];
const REQUEST_TIMEOUT_MS = 120_000;
const SCHEMAS: Record<string, unknown> = {
  numbers: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 999 }, minItems: 24, maxItems: 24 },
  text: { type: 'object', properties: { text: { type: 'string', minLength: 150, maxLength: 200 } }, required: ['text'], additionalProperties: false },
};

interface Result {
  tokens: number;
  /** Request start to the last byte. */
  ms: number;
  /** First content chunk to the last one. */
  decodeMs: number;
}

async function chat(server: BenchServer, body: Record<string, unknown>): Promise<Result> {
  const t0 = performance.now();
  const res = await fetch(`${server.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (!res.ok || !res.body) throw new Error(`request failed (${res.status}): ${(await res.text()).slice(0, 300)}`);
  let first = -1;
  let last = -1;
  let tokens = -1;
  for await (const { event, data, at } of sseData(res.body)) {
    if (data === '[DONE]') continue;
    const chunk = JSON.parse(data) as { choices?: { delta?: { content?: string } }[]; usage?: { completion_tokens: number } | null; error?: unknown };
    if (event === 'error' || chunk.error) throw new Error(`stream error: ${data.slice(0, 300)}`);
    if (chunk.choices?.[0]?.delta?.content) {
      if (first < 0) first = at;
      last = at;
    }
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  if (tokens < 0 || first < 0) throw new Error('stream ended without usage or content');
  return { tokens, ms: performance.now() - t0, decodeMs: last - first };
}

/** One pair: the constrained request, then an unconstrained twin of the same length. */
async function pair(server: BenchServer, schema: unknown, i: number): Promise<{ on: Result; off: Result }> {
  const words = randomWords(7000 + i, 40);
  const messages = [{ role: 'user', content: `List numbers. ${words}` }];
  const reversed = [{ role: 'user', content: `${words.split(' ').reverse().join(' ')} List numbers.` }];
  const on = await chat(server, {
    messages,
    temperature: 0.8,
    seed: i,
    max_tokens: 1000,
    response_format: { type: 'json_schema', json_schema: { name: 'answer', schema } },
  });
  const off = await chat(server, { messages: reversed, temperature: 0.8, seed: i, max_tokens: on.tokens, ignore_eos: true });
  return { on, off };
}

async function level(server: BenchServer, schema: unknown, clients: number): Promise<{ on: Result[]; off: Result[] }> {
  const on: Result[] = [];
  const off: Result[] = [];
  let next = 0;
  const total = PAIRS * clients;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) {
        const p = await pair(server, schema, clients * 1000 + next++);
        on.push(p.on);
        off.push(p.off);
      }
    }),
  );
  return { on, off };
}

const tokPerSec = (rs: Result[]): number => rs.reduce((n, r) => n + r.tokens, 0) / (rs.reduce((n, r) => n + r.ms, 0) / 1000);
const decodePerSec = (rs: Result[]): number => rs.reduce((n, r) => n + r.tokens - 1, 0) / (rs.reduce((n, r) => n + r.decodeMs, 0) / 1000);

async function main(): Promise<number> {
  say(`grammar cost bench: ${provenance()}; node ${process.version}; loopback only`);
  say(`model: ${await benchModel()}`);
  const server = await startServer();
  say(`server: ${server.baseUrl} ready; ${server.sizing}`);
  try {
    say('\nthroughput, constrained (json_schema) vs an unconstrained twin of the same length');
    say('  schema  |  c | pairs | constrained tok/s | unconstrained tok/s | ratio | decode tok/s on / off | decode ratio | tokens/answer (median)');
    for (const [name, schema] of Object.entries(SCHEMAS)) {
      // Warm-up: the first constrained request compiles and parses the grammar.
      await pair(server, schema, 0);
      for (const c of LEVELS) {
        const r = await level(server, schema, c);
        const on = tokPerSec(r.on);
        const off = tokPerSec(r.off);
        const dOn = decodePerSec(r.on);
        const dOff = decodePerSec(r.off);
        say(
          `  ${name.padEnd(7)} | ${String(c).padStart(2)} | ${String(r.on.length).padStart(5)} | ${on.toFixed(1).padStart(17)} | ${off.toFixed(1).padStart(19)} | ${(on / off).toFixed(3)} | ${`${dOn.toFixed(1)} / ${dOff.toFixed(1)}`.padStart(21)} | ${(dOn / dOff).toFixed(3).padStart(12)} | ${median(r.on.map((x) => x.tokens))}`,
        );
      }
    }
  } finally {
    const s = await server.stop();
    say(`server stopped in ${s.ms} ms (exit code ${s.code}, signal ${s.signal})`);
  }
  say('\ngrammar compile per schema (ms): first compile, cached repeat (by schema hash)');
  for (const [name, schema] of Object.entries(CONTRACT_SCHEMAS)) {
    const t0 = performance.now();
    const first = compileOutputConstraint({ kind: 'json_schema', schema: { ...(schema as object), $comment: `bench-${process.pid}` }, param: 'schema' });
    const t1 = performance.now();
    compileOutputConstraint({ kind: 'json_schema', schema: { ...(schema as object), $comment: `bench-${process.pid}` }, param: 'schema' });
    const t2 = performance.now();
    say(`  ${name.padEnd(14)} ${(t1 - t0).toFixed(2).padStart(7)} ${(t2 - t1).toFixed(2).padStart(7)}   (${first.grammar.length} bytes of GBNF)`);
  }
  return 0;
}

runBench(main);
