/**
 * `/metrics` on the real server (actors + llama.cpp on the tiny model): scrape before and after one
 * request of each kind (chat, completion, streamed, guardrail-denied, rate-limited, engine-side
 * error) and check that exactly the right samples moved, by exactly how much, with the model and
 * tenant labels. Also: every name in the seeds' "Required Prometheus Metrics" table is exported,
 * and the default process metrics carry their standard names (no doubled prefix).
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const KEY_A = 'metrics-key-team-a';
const KEY_B = 'metrics-key-team-b';
/** Requests per minute per key: enough for team-a's requests, and quick to exhaust for team-b. */
const PER_MINUTE = 12;
/** Tokens a request generates before yielding to a waiting one of equal priority. */
const TIMESLICE = 8;
/** Long enough to still be generating when a second request arrives (the tiny model is fast). */
const LONG = 300;

/** The seeds' OBS-1 table (003, "Required Prometheus Metrics"), name by name. */
const REQUIRED = [
  // 002's capability contract and 000's MoE counter, besides the OBS-1 table.
  'inferflux_capability_rejections_total',
  'inferflux_moe_requests_total',
  'inferflux_adapter_requests_total',
  'inferflux_request_latency_seconds',
  'inferflux_queue_wait_seconds',
  'inferflux_batch_exec_seconds',
  'inferflux_prefill_duration_seconds',
  'inferflux_decode_duration_seconds',
  'inferflux_scheduler_queue_depth',
  'inferflux_prefix_hits_total',
  'inferflux_prefix_misses_total',
  'inferflux_prefix_matched_tokens_total',
  'inferflux_prefix_partial_hits_total',
  'inferflux_fairness_preemptions_total',
  'inferflux_fairness_yields_total',
  'inferflux_fairness_resumes_total',
  'inferflux_fairness_tokens_total',
];
/**
 * In the table but not exported: node-llama-cpp 3.22.1 has no multimodal (libmtmd) binding and the
 * server accepts no image parts, so nothing could ever move these; a counter stuck at 0 would tell a
 * dashboard "no image traffic" when the truth is "images are refused". They come with image input.
 */
const NOT_EXPORTED = ['inferflux_multimodal_images_total', 'inferflux_multimodal_requests_total'];

type Samples = Map<string, number>;

/** Prometheus text format -> sample (name plus label set, as written) -> value. */
function parse(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(server: RunningServer): Promise<{ text: string; samples: Samples }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return { text, samples: parse(text) };
}

/** What moved between two scrapes (samples that appeared count from 0); histogram buckets left out. */
function delta(before: Samples, after: Samples): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    if (k.includes('_bucket{') || !k.startsWith('inferflux_')) continue;
    // Gauges that follow live state, and the rate-limiter's own round trips, are not request deltas.
    if (/^inferflux_(scheduler_queue_depth|prefill_queue_depth|decode_queue_depth|active_sequences|kv_host_pages|kv_disk_bytes)\b/.test(k)) continue;
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = Math.round(d * 1e6) / 1e6;
  }
  return out;
}

/** Histogram `_count` and `_sum` samples move together; the sum's value is a duration, so only its sign is known. */
function withoutSums(d: Record<string, number>): { sums: string[]; rest: Record<string, number> } {
  const sums: string[] = [];
  const rest: Record<string, number> = {};
  for (const [k, v] of Object.entries(d)) {
    if (/_sum\{/.test(k)) {
      expect(v, k).to.be.at.least(0);
      sums.push(k.replace('_sum{', '_count{'));
    } else rest[k] = v;
  }
  return { sums, rest };
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

function post(server: RunningServer, path: string, key: string, body: unknown): Promise<Response> {
  return fetch(server.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
}

/** The samples a successful generation of `usage` must move, and nothing else. */
function generationDelta(route: string, u: Usage, stream: boolean): Record<string, number> {
  const m = `model="${MODEL}"`;
  const prefix: Record<string, number> =
    u.prompt_tokens_details.cached_tokens === 0
      ? { [`inferflux_prefix_misses_total{${m}}`]: 1 }
      : {
          [u.prompt_tokens_details.cached_tokens >= u.prompt_tokens - 1 ? `inferflux_prefix_hits_total{${m}}` : `inferflux_prefix_partial_hits_total{${m}}`]: 1,
          [`inferflux_prefix_matched_tokens_total{${m}}`]: u.prompt_tokens_details.cached_tokens,
        };
  return {
    [`inferflux_requests_total{route="${route}",${m},backend="cpu",status="200"}`]: 1,
    [`inferflux_model_prompt_tokens_total{${m},backend="cpu"}`]: u.prompt_tokens,
    [`inferflux_model_completion_tokens_total{${m},backend="cpu"}`]: u.completion_tokens,
    [`inferflux_tenant_tokens_total{tenant="team-a"}`]: u.completion_tokens,
    [`inferflux_fairness_tokens_total{priority="0"}`]: u.completion_tokens,
    ...(stream ? { [`inferflux_stream_tokens_total{${m}}`]: u.completion_tokens } : {}),
    ...prefix,
    [`inferflux_request_latency_seconds_count{${m}}`]: 1,
    [`inferflux_ttft_seconds_count{${m}}`]: 1,
    [`inferflux_queue_wait_seconds_count{${m}}`]: 1,
    [`inferflux_batch_exec_seconds_count{${m}}`]: 1,
    [`inferflux_prefill_duration_seconds_count{${m}}`]: 1,
    [`inferflux_decode_duration_seconds_count{${m}}`]: 1,
    // The blocklist is checked on the prompt and, as it streams, on the output.
    [`inferflux_guardrail_verdict_seconds_count{stage="prompt",engine="local"}`]: 1,
    [`inferflux_guardrail_verdict_seconds_count{stage="output",engine="local"}`]: 1,
  };
}

describe('metrics: every request kind moves the right samples (real server)', function () {
  this.timeout(120_000);
  let server: RunningServer;

  before(async () => {
    const cfg = join(tmpdir(), `ifx-metrics-${process.pid}.yaml`);
    writeFileSync(
      cfg,
      [
        'runtime:',
        '  context_size: 512',
        '  threads_per_worker: 1',
        // One sequence, so a second request waits, and a short timeslice, so the first yields to it.
        '  sequences_per_worker: 1',
        '  fairness:',
        `    max_timeslice_tokens: ${TIMESLICE}`,
        'scheduler:',
        '  decode_pool_size: 1',
        'rate_limit:',
        `  requests_per_minute: ${PER_MINUTE}`,
        '',
      ].join('\n'),
    );
    server = await startServer({
      INFERFLUX_CONFIG: cfg,
      INFERFLUX_API_KEYS: `${KEY_A}:generate|read@team-a,${KEY_B}:generate|read@team-b`,
      INFERFLUX_GUARDRAIL_BLOCKLIST: 'forbiddenword',
    });
  });
  after(async () => {
    await server?.stop();
  });

  /**
   * Runs `fn` between two scrapes; returns what moved, less the scrapes' own requests. Per-tenant
   * and per-priority tokens are counted by the scheduler actor and read at scrape time, so they
   * may trail the response by a message hop: `settled` says when the after-scrape may be taken
   * (polled, bounded to 5 s).
   */
  async function moved(fn: () => Promise<void>, settled: (d: Record<string, number>) => boolean = () => true): Promise<Record<string, number>> {
    const before = (await scrape(server)).samples;
    await fn();
    let scrapes = 1;
    let d = delta(before, (await scrape(server)).samples);
    for (const deadline = Date.now() + 5000; !settled(d) && Date.now() < deadline; scrapes++) {
      await new Promise((r) => setTimeout(r, 100));
      d = delta(before, (await scrape(server)).samples);
    }
    for (const own of ['inferflux_requests_total{route="/metrics",model="none",backend="cpu",status="200"}', 'inferflux_request_latency_seconds_count{model="none"}']) {
      d[own] = (d[own] ?? 0) - scrapes;
      expect(d[own], own).to.be.at.least(0);
      if (d[own] === 0) {
        delete d[own];
        delete d[own.replace('_count{', '_sum{')];
      }
    }
    // Process state, not request work: the engine context gets its persistent llama.cpp thread pool
    // on its first step on 2+ threads (here the first prompt: 1 thread per worker, both cores for
    // a prompt), whichever test sends it. test/integration/threadpool.test.ts checks the gauges.
    delete d.inferflux_llama_threadpools;
    delete d.inferflux_llama_threadpool_threads;
    return d;
  }

  /** A generation's delta is complete once the scheduler reported the tenant's tokens. */
  const tenantCaughtUp = (u: () => Usage | undefined) => (d: Record<string, number>) =>
    d['inferflux_tenant_tokens_total{tenant="team-a"}'] === u()?.completion_tokens;

  /** The whole delta, with each histogram's `_sum` checked against its `_count`. */
  function expectDelta(d: Record<string, number>, want: Record<string, number>): void {
    const { sums, rest } = withoutSums(d);
    for (const c of sums) expect(rest, `${c} moves with its _sum`).to.have.property(c);
    expect(rest).to.deep.equal(want);
  }

  it('exports every metric of the seeds\' table, and the process metrics under their standard names', async () => {
    const { text } = await scrape(server);
    const types = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    for (const name of REQUIRED) expect(types, name).to.include(name);
    for (const name of NOT_EXPORTED) expect(types, name).to.not.include(name);
    expect(types).to.include('process_cpu_user_seconds_total');
    expect(types).to.include('process_resident_memory_bytes');
    expect(types).to.include('nodejs_eventloop_lag_seconds');
    const doubled = [...types].filter((n) => /(^|_)process_process_|inferflux_process_|inferflux_inferflux_/.test(n));
    expect(doubled).to.deep.equal([]);
  });

  it('a chat completion', async () => {
    let usage: Usage | undefined;
    const d = await moved(async () => {
      const r = await post(server, '/v1/chat/completions', KEY_A, { model: MODEL, messages: [{ role: 'user', content: 'Count the metrics.' }], max_tokens: 6, ignore_eos: true });
      expect(r.status).to.equal(200);
      usage = ((await r.json()) as { usage: Usage }).usage;
    }, tenantCaughtUp(() => usage));
    expect(usage!.completion_tokens).to.be.greaterThan(0);
    expectDelta(d, generationDelta('/v1/chat/completions', usage!, false));
  });

  it('a text completion', async () => {
    let usage: Usage | undefined;
    const d = await moved(async () => {
      const r = await post(server, '/v1/completions', KEY_A, { model: MODEL, prompt: 'Metrics are', max_tokens: 5 });
      expect(r.status).to.equal(200);
      usage = ((await r.json()) as { usage: Usage }).usage;
    }, tenantCaughtUp(() => usage));
    expectDelta(d, generationDelta('/v1/completions', usage!, false));
  });

  it('a streamed chat completion counts its tokens in inferflux_stream_tokens_total', async () => {
    let usage: Usage | undefined;
    const d = await moved(async () => {
      const r = await post(server, '/v1/chat/completions', KEY_A, {
        model: MODEL,
        messages: [{ role: 'user', content: 'Stream a few tokens.' }],
        max_tokens: 7,
        // Sampled with a random seed: the tiny model may otherwise end at its first token.
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      });
      expect(r.status).to.equal(200);
      const events = (await r.text())
        .split('\n\n')
        .filter((e) => e.startsWith('data: {'))
        .map((e) => JSON.parse(e.slice(6)) as { usage?: Usage | null });
      usage = events.at(-1)!.usage!;
    }, tenantCaughtUp(() => usage));
    expect(usage!.completion_tokens).to.be.greaterThan(0);
    expectDelta(d, generationDelta('/v1/chat/completions', usage!, true));
  });

  it('a guardrail denial', async () => {
    const d = await moved(async () => {
      const r = await post(server, '/v1/chat/completions', KEY_A, { model: MODEL, messages: [{ role: 'user', content: 'say forbiddenword' }], max_tokens: 4 });
      expect(r.status).to.equal(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).to.equal('guardrail_denied');
    });
    const m = `model="${MODEL}"`;
    const { rest } = withoutSums(d);
    // The local blocklist check's own latency histogram moves too (stage prompt, engine local).
    expect(rest).to.deep.equal({
      [`inferflux_requests_total{route="/v1/chat/completions",${m},backend="cpu",status="400"}`]: 1,
      [`inferflux_errors_total{${m},code="guardrail_denied"}`]: 1,
      [`inferflux_guardrail_denials_total{stage="prompt",reason="blocklist"}`]: 1,
      [`inferflux_guardrail_verdict_seconds_count{stage="prompt",engine="local"}`]: 1,
      [`inferflux_request_latency_seconds_count{${m}}`]: 1,
    });
  });

  it('a capability refusal (an image to a text-only model) counts in inferflux_capability_rejections_total', async () => {
    const d = await moved(async () => {
      const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,aGk=' } };
      const r = await post(server, '/v1/chat/completions', KEY_A, { model: MODEL, messages: [{ role: 'user', content: [{ type: 'text', text: 'what is it?' }, image] }], max_tokens: 4 });
      expect(r.status).to.equal(422);
      expect(((await r.json()) as { error: { code: string } }).error.code).to.equal('capability_not_supported');
    });
    // Refused before a model is resolved: the request's own series say model "none", the refusal names it.
    expectDelta(d, {
      [`inferflux_requests_total{route="/v1/chat/completions",model="none",backend="cpu",status="422"}`]: 1,
      [`inferflux_errors_total{model="none",code="capability_not_supported"}`]: 1,
      [`inferflux_capability_rejections_total{model="${MODEL}",capability="vision"}`]: 1,
      [`inferflux_request_latency_seconds_count{model="none"}`]: 1,
    });
    // A model name the server does not serve never becomes a label value (no series per made-up name).
    const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,aGk=' } };
    const r = await post(server, '/v1/chat/completions', KEY_A, { model: 'made-up-model-zz', messages: [{ role: 'user', content: [image] }], max_tokens: 1 });
    expect(r.status).to.equal(422);
    const { text } = await scrape(server);
    expect(text).to.not.contain('made-up-model-zz');
    expect(text).to.contain('inferflux_capability_rejections_total{model="unknown",capability="vision"} 1');
  });

  it('an engine-side error (prompt plus max_tokens beyond the context) is counted once', async () => {
    const d = await moved(async () => {
      const r = await post(server, '/v1/chat/completions', KEY_A, { model: MODEL, messages: [{ role: 'user', content: 'too long' }], max_tokens: 1000 });
      expect(r.status).to.equal(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).to.equal('context_length_exceeded');
    });
    const m = `model="${MODEL}"`;
    expectDelta(d, {
      [`inferflux_requests_total{route="/v1/chat/completions",${m},backend="cpu",status="400"}`]: 1,
      [`inferflux_errors_total{${m},code="context_length_exceeded"}`]: 1,
      [`inferflux_request_latency_seconds_count{${m}}`]: 1,
      [`inferflux_guardrail_verdict_seconds_count{stage="prompt",engine="local"}`]: 1,
    });
  });

  it('a request that waits for the only sequence makes the running one yield and resume', async () => {
    const m = `model="${MODEL}"`;
    const d = await moved(async () => {
      // The long request streams, so the short one is sent once it is surely generating.
      const long = await post(server, '/v1/completions', KEY_A, { model: MODEL, prompt: 'A long one', max_tokens: LONG, ignore_eos: true, stream: true });
      const reader = long.body!.getReader();
      await reader.read();
      const short = await post(server, '/v1/completions', KEY_A, { model: MODEL, prompt: 'Short', max_tokens: 2, ignore_eos: true });
      expect(short.status).to.equal(200);
      await short.arrayBuffer();
      while (!(await reader.read()).done);
    }, (x) => x['inferflux_tenant_tokens_total{tenant="team-a"}'] === LONG + 2);
    expect(d['inferflux_fairness_yields_total']).to.equal(1);
    expect(d['inferflux_fairness_resumes_total']).to.equal(1);
    expect(d['inferflux_fairness_preemptions_total']).to.equal(undefined);
    expect(d[`inferflux_stream_tokens_total{${m}}`]).to.equal(LONG);
    expect(d[`inferflux_requests_total{route="/v1/completions",${m},backend="cpu",status="200"}`]).to.equal(2);
  });

  it('a rate-limited request', async () => {
    // team-b spends its per-minute budget on cheap requests first (bounded: the budget plus slack).
    let spent = 0;
    for (; spent < PER_MINUTE + 4; spent++) {
      const r = await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${KEY_B}` } });
      await r.arrayBuffer();
      if (r.status === 429) break;
    }
    expect(spent).to.equal(PER_MINUTE);
    const d = await moved(async () => {
      const r = await post(server, '/v1/chat/completions', KEY_B, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
      expect(r.status).to.equal(429);
      expect(((await r.json()) as { error: { code: string } }).error.code).to.equal('rate_limited');
    });
    // Refused before the body is read, so the model is not known yet: label "none".
    expectDelta(d, {
      'inferflux_requests_total{route="/v1/chat/completions",model="none",backend="cpu",status="429"}': 1,
      'inferflux_errors_total{model="none",code="rate_limited"}': 1,
      'inferflux_request_latency_seconds_count{model="none"}': 1,
    });
  });
});
