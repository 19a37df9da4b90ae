/**
 * `npm run bench:prefill`: prefill throughput of a lone long prompt through the server against
 * llama.cpp's own `llama-bench` (issue 13, item 5), on the same GGUF with the same threads, in one
 * run, interleaved round by round.
 *
 *   - llama-bench `-p 512 -n 0` (and `-p 2048`), `-t` = the machine's cores, `-r 2` per round:
 *     llama.cpp's prompt-processing rate with nothing around it (built by
 *     `npm run bench:build-llama-server` from the llama.cpp source node-llama-cpp ships).
 *   - InferFlux: the default server (every engine worker's core is lent to a lone long prompt,
 *     src/actors/engine/core-budget.ts), one 2000-token prompt of unique random tokens per request
 *     (the prefix cache never hits), `max_tokens` 1, streamed; prefill tok/s = prompt tokens /
 *     the server's own prefill time (`inferflux_prefill_duration_seconds`, engine side), and
 *     end to end = prompt tokens / time to first token at the client.
 *
 * Ratio = InferFlux / llama-bench pp512 (target >= 0.95). Loopback only; bounded: ROUNDS rounds,
 * a timeout per request. Exit code 0 when the measurement completed, whatever the ratios.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { LlamaServerMissingError, locateLlamaServer } from './llama-server/process.js';
import { benchModel, provenance, randomTokens, runBench, say, startServer, type BenchServer } from './server.js';
import { median } from './stats.js';
import { streamRequest } from './stream-client.js';

const ROUNDS = 3;
const PROMPT_TOKENS = 2000;
const REQUESTS_PER_ROUND = 2;
const REQUEST_TIMEOUT_MS = 120_000;

/** llama-bench's mean tok/s for one test (`-o json`: one object per test with `avg_ts`). */
function llamaBench(bin: string, model: string, threads: number, prompt: number): number {
  const out = execFileSync(bin, ['-m', model, '-p', String(prompt), '-n', '0', '-t', String(threads), '-r', '2', '-o', 'json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
  });
  const rows = JSON.parse(out) as { n_prompt: number; avg_ts: number }[];
  const row = rows.find((r) => r.n_prompt === prompt);
  if (!row) throw new Error(`llama-bench printed no pp${prompt} row: ${out.slice(0, 300)}`);
  return row.avg_ts;
}

async function prefillSeconds(server: BenchServer): Promise<number> {
  let text: string;
  try {
    text = await (await fetch(`${server.baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  } catch {
    // A kept-alive connection the server closed while llama-bench ran: once more, on a new one.
    text = await (await fetch(`${server.baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  }
  const m = /^inferflux_prefill_duration_seconds_sum\{[^}]*\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

async function main(): Promise<number> {
  say(`prefill bench: ${provenance()}; node ${process.version}; loopback only`);
  let bin: string;
  try {
    bin = path.join(path.dirname(locateLlamaServer().bin), 'llama-bench');
    if (!existsSync(bin)) throw new LlamaServerMissingError(`llama-bench is not built (expected at ${bin}): run \`npm run bench:build-llama-server\``);
  } catch (err) {
    if (err instanceof LlamaServerMissingError) {
      say(err.message);
      return 1;
    }
    throw err;
  }
  const model = await benchModel();
  const modelPath = path.resolve(model.split(' ')[0]!);
  const threads = cpus().length;
  say(`model: ${model}; llama-bench: ${bin}; threads: ${threads}`);
  const server = await startServer();
  say(`server: ${server.baseUrl} ready; ${server.sizing}`);
  const pp512: number[] = [];
  const pp2048: number[] = [];
  const engine: number[] = [];
  const endToEnd: number[] = [];
  try {
    // Warm-up: the first request pays lazy allocations on the engine worker.
    await streamRequest({ baseUrl: server.baseUrl, prompt: randomTokens(1, PROMPT_TOKENS), maxTokens: 1, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    for (let round = 0; round < ROUNDS; round++) {
      pp512.push(llamaBench(bin, modelPath, threads, 512));
      pp2048.push(llamaBench(bin, modelPath, threads, 2048));
      for (let i = 0; i < REQUESTS_PER_ROUND; i++) {
        const before = await prefillSeconds(server);
        const r = await streamRequest({
          baseUrl: server.baseUrl,
          prompt: randomTokens(1000 + round * 10 + i, PROMPT_TOKENS),
          maxTokens: 1,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        if (!r.ok) throw new Error(`request failed: ${r.error ?? 'unknown'}`);
        if (r.cachedTokens > 0) throw new Error(`the prefix cache served ${r.cachedTokens} tokens of a unique prompt`);
        const seconds = (await prefillSeconds(server)) - before;
        engine.push(r.promptTokens / seconds);
        endToEnd.push(r.promptTokens / (r.ttftMs / 1000));
      }
      say(
        `  round ${round + 1}: llama-bench pp512 ${pp512.at(-1)!.toFixed(0)} tok/s, pp2048 ${pp2048.at(-1)!.toFixed(0)} tok/s; ` +
          `InferFlux ${PROMPT_TOKENS}-token prefill ${engine.slice(-REQUESTS_PER_ROUND).map((v) => v.toFixed(0)).join(', ')} tok/s (engine), ` +
          `${endToEnd.slice(-REQUESTS_PER_ROUND).map((v) => v.toFixed(0)).join(', ')} tok/s (to first token)`,
      );
    }
  } finally {
    const s = await server.stop();
    say(`server stopped in ${s.ms} ms (exit code ${s.code}, signal ${s.signal})`);
  }
  const base = median(pp512);
  say('\n  measure                                   | tok/s (median) | vs llama-bench pp512');
  const row = (label: string, v: number): void => say(`  ${label.padEnd(41)} | ${v.toFixed(0).padStart(14)} | ${(v / base).toFixed(3).padStart(20)}`);
  row(`llama-bench pp512 (-t ${threads})`, base);
  row(`llama-bench pp2048 (-t ${threads})`, median(pp2048));
  row(`InferFlux ${PROMPT_TOKENS}-token prefill, engine time`, median(engine));
  row(`InferFlux ${PROMPT_TOKENS}-token prefill, to first token`, median(endToEnd));
  return 0;
}

runBench(main);
