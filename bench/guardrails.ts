/**
 * Guardrail verdict latency, without the model: `node --import tsx bench/guardrails.ts`.
 *
 * 1. Local prompt checks (50-term blocklist + all PII detectors, redact) on ~2k-character prompts,
 *    a fifth of them carrying PII.
 * 2. The same plus an OPA-style decision over loopback HTTP (the policy server runs in a worker
 *    thread, so it does not share this event loop), sequential and 16 at a time.
 * 3. The output filter over a 2k-character completion streamed in 4-character deltas.
 *
 * Loops are bounded (fixed iteration counts); targets: P95 < 500 ms including the external call
 * (issue 4), and under 1 ms per request for the local checks (issue 9's policy overhead budget).
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Blocklist } from '../src/policy/guardrails/blocklist.js';
import { GuardrailEngine, type PromptContext } from '../src/policy/guardrails/guardrail-engine.js';
import { guardSink } from '../src/policy/guardrails/guarded-sink.js';
import type { GuardrailPolicy } from '../src/policy/types.js';
import type { TokenSink } from '../src/generation/contract.js';
import { mulberry32 } from './server.js';
import { summarize, type Summary } from './stats.js';

const PROMPTS = 400;
const LOCAL_ITERS = 5000;
const OPA_ITERS = 1000;
const OPA_CONCURRENCY = 16;
const OUTPUT_ITERS = 1000;

const WORDS = (
  'the of and to in is that for it as with was on be by this are or from at which but not have an they you were ' +
  'their one all we can her has there been if more when will would who so no model server request policy tenant ' +
  'latency token budget report quarter revenue customer support ticket invoice shipment contract review summary ' +
  'please explain describe compare analyse write draft translate improve function error stack trace deploy cluster'
).split(' ');
const PII = [
  'contact jane.doe@example.com',
  'call +1 415 555 2671',
  'card 4111 1111 1111 1111',
  'iban GB82 WEST 1234 5698 7654 32',
  'key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w',
];

function makeText(r: () => number, chars: number, piiRate: number): string {
  let out = '';
  while (out.length < chars) {
    out += WORDS[Math.floor(r() * WORDS.length)]! + (r() < 0.08 ? '. ' : ' ');
    if (r() < piiRate / 350) out += PII[Math.floor(r() * PII.length)]! + ' ';
  }
  return out.slice(0, chars);
}

const BLOCKLIST = Array.from({ length: 50 }, (_, i) => `blockedterm${i}`).concat(['classified', 'top secret', 'launch codes']);

function policy(p: Partial<GuardrailPolicy> = {}): GuardrailPolicy {
  return {
    blocklist: BLOCKLIST,
    pii: { action: 'redact', kinds: ['email', 'phone', 'credit_card', 'iban', 'secret'] },
    opaEndpoint: '',
    opaTimeoutMs: 200,
    opaFailMode: 'closed',
    ...p,
  };
}

const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(1)} us` : `${ms.toFixed(2)} ms`);
const line = (name: string, s: Summary) =>
  `${name.padEnd(44)} n=${String(s.n).padStart(5)}  p50 ${fmt(s.p50).padStart(9)}  p95 ${fmt(s.p95).padStart(9)}  p99 ${fmt(s.p99).padStart(9)}  mean ${fmt(s.mean).padStart(9)}`;

/** Loopback OPA stand-in in its own thread: allows unless the prompt mentions "forbidden". */
async function startOpaWorker(): Promise<{ url: string; stop: () => Promise<void> }> {
  const code = `
    const http = require('node:http');
    const { parentPort } = require('node:worker_threads');
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const { input } = JSON.parse(Buffer.concat(chunks).toString());
        const allow = !input.prompt.includes('forbidden');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ result: { allow, reason: allow ? undefined : 'forbidden topic' } }));
      });
    });
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
    parentPort.on('message', () => server.close(() => process.exit(0)));
  `;
  const worker = new Worker(code, { eval: true });
  const [port] = (await once(worker, 'message')) as [number];
  return {
    url: `http://127.0.0.1:${port}/v1/data/inferflux/allow`,
    stop: async () => {
      worker.postMessage('stop');
      await once(worker, 'exit');
    },
  };
}

async function main(): Promise<void> {
  const r = mulberry32(42); // deterministic: every run checks the same prompts
  const prompts = Array.from({ length: PROMPTS }, () => makeText(r, 2000, 0.2));
  const ctx = (i: number): PromptContext => ({
    prompt: { kind: 'chat', messages: [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: prompts[i % PROMPTS]! }] },
    model: 'demo',
    tenant: 'acme',
    keyId: 'key:0123456789ab',
    route: '/v1/chat/completions',
  });
  const withPii = prompts.filter((p) => PII.some((x) => p.includes(x.split(' ').slice(1).join(' ')))).length;
  console.log(`guardrails bench: ${PROMPTS} prompts of ~2000 chars (${withPii} with PII), ${BLOCKLIST.length}-term blocklist, PII redact (all kinds)`);
  console.log(`node ${process.version}, ${process.platform}/${process.arch}\n`);

  // 1. Local checks.
  const local = new GuardrailEngine(policy());
  for (let i = 0; i < 200; i++) await local.checkPrompt(ctx(i)); // warm the JIT
  const localTimes: number[] = [];
  for (let i = 0; i < LOCAL_ITERS; i++) {
    const t0 = performance.now();
    const v = await local.checkPrompt(ctx(i));
    localTimes.push(performance.now() - t0);
    if (!v.allow) throw new Error('bench prompt was denied');
  }
  const localS = summarize(localTimes);
  console.log(line('prompt, local (blocklist + PII redact)', localS));

  // 2. Local + loopback OPA.
  const opa = await startOpaWorker();
  let opaS: Summary;
  let opaConcS: Summary;
  try {
    const engine = new GuardrailEngine(policy({ opaEndpoint: opa.url, opaTimeoutMs: 200 }));
    for (let i = 0; i < 100; i++) await engine.checkPrompt(ctx(i));
    const times: number[] = [];
    let unavailable = 0;
    for (let i = 0; i < OPA_ITERS; i++) {
      const t0 = performance.now();
      const v = await engine.checkPrompt(ctx(i));
      times.push(performance.now() - t0);
      if (!v.allow) unavailable++;
    }
    opaS = summarize(times);
    console.log(line('prompt, local + OPA over loopback HTTP', opaS) + (unavailable ? `  (${unavailable} denied)` : ''));

    const conc: number[] = [];
    let next = 0;
    const lane = async () => {
      while (next < OPA_ITERS) {
        const i = next++;
        const t0 = performance.now();
        await engine.checkPrompt(ctx(i));
        conc.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: OPA_CONCURRENCY }, lane));
    opaConcS = summarize(conc);
    console.log(line(`prompt, local + OPA, ${OPA_CONCURRENCY} concurrent`, opaConcS));
  } finally {
    await opa.stop();
  }

  // 3. Output filter: 2k chars in 4-char deltas through the sink wrapper.
  const outputs = Array.from({ length: 50 }, () => makeText(r, 2000, 0.2));
  const rules = { blocklist: new Blocklist(BLOCKLIST), piiAction: 'redact' as const, piiKinds: new Set(['email', 'phone', 'credit_card', 'iban', 'secret'] as const) };
  const nullSink: TokenSink = { onStart() {}, onText() {}, onChoiceEnd() {}, onEnd() {}, onError() {} };
  const outTimes: number[] = [];
  const deltas = 500;
  for (let i = 0; i < OUTPUT_ITERS + 50; i++) {
    const text = outputs[i % outputs.length]!;
    const s = guardSink(nullSink, rules, 1, { deny: () => {} });
    const t0 = performance.now();
    s.onStart({ model: 'demo', promptTokens: 1, created: 0 });
    for (let k = 0; k < text.length; k += 4) s.onText(0, text.slice(k, k + 4));
    s.onChoiceEnd(0, 'stop', deltas);
    s.onEnd({ promptTokens: 1, completionTokens: deltas, cachedTokens: 0 } as never);
    if (i >= 50) outTimes.push(performance.now() - t0);
  }
  const outS = summarize(outTimes);
  console.log(line(`output filter, 2k chars / ${deltas} deltas`, outS));
  console.log(`${''.padEnd(44)} per delta: mean ${fmt(outS.mean / deltas)}`);

  console.log('\ntargets');
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  console.log(`  P95 incl. external call < 500 ms:     ${fmt(opaS.p95)} sequential, ${fmt(opaConcS.p95)} at ${OPA_CONCURRENCY} concurrent  ${verdict(Math.max(opaS.p95, opaConcS.p95) < 500)}  (ratio ${(Math.max(opaS.p95, opaConcS.p95) / 500).toFixed(4)} of target)`);
  console.log(`  local prompt check P95 < 1 ms:        ${fmt(localS.p95)}  ${verdict(localS.p95 < 1)}  (ratio ${(localS.p95 / 1).toFixed(3)} of target)`);
  console.log(`  output filter per delta (mean) < 1 ms: ${fmt(outS.mean / deltas)}  ${verdict(outS.mean / deltas < 1)}`);
  console.log(`  OPA call share of the verdict (p50):  ${((opaS.p50 - localS.p50) / opaS.p50 * 100).toFixed(0)}%`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
