/**
 * `/debug` on the real server (tiny model, real llama.cpp): the token traces of finished requests
 * match what the client received (token counts, per-choice token times, ttft), a client that
 * leaves is traced as 499, the engines report their step split, and only `admin` may look.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { startServer, type RunningServer } from '../helpers/server.js';

const ADMIN = 'sk-it-debug-admin-0001';
const USER = 'sk-it-debug-user-0002';

interface Summary {
  request_id: string;
  status: number;
  outcome: string;
  model: string;
  key_id: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  finish_reasons: string[];
  latency_ms: number;
  ttft_ms: number | null;
  timings_ms: { tokenize: number; queue: number; prefill: number; decode: number; kv_transfer: number | null };
  inter_token_ms: { p50: number; p90: number; p99: number; max: number } | null;
  decode_tokens_per_s: number | null;
  truncated: boolean;
}
interface Detail extends Summary {
  object: string;
  choices: { index: number; finish_reason: string; token_times_ms: number[] }[];
}
interface DebugDoc {
  object: string;
  engines: { model: string; role: string; worker: number; state: string; status: { steps: number; step_ms: { steps: number; decode: number; sample: number; apply: number; between: number } } | null }[];
  adapters: unknown[];
  token_traces: Summary[];
}

async function getJson<T>(server: RunningServer, path: string, key = ADMIN): Promise<{ status: number; body: T }> {
  const r = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: r.status, body: (await r.json()) as T };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not within 5 s`);
}

describe('/debug: token traces and engine state (real server)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    server = await startServer({ INFERFLUX_API_KEYS: `${ADMIN}:admin|generate|read,${USER}:generate|read@team-a` });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: USER, maxRetries: 0 });
  });
  after(async () => {
    await server?.stop();
  });

  it("a finished request's trace matches what the client got: tokens, their times, ttft", async () => {
    const id = 'debug-trace-one';
    const out = (await client.chat.completions.create(
      { model: 'tiny-seed0', messages: [{ role: 'user', content: 'trace me' }], max_tokens: 12, temperature: 0, ignore_eos: true } as never,
      { headers: { 'x-request-id': id } },
    )) as OpenAI.ChatCompletion;
    expect(out.usage!.completion_tokens).to.equal(12);

    const list = await getJson<DebugDoc>(server, '/debug');
    expect(list.status).to.equal(200);
    expect(list.body.object).to.equal('debug');
    const s = list.body.token_traces.find((t) => t.request_id === id)!;
    expect(s, 'the request is in the list').to.exist;
    expect(s).to.include({ status: 200, outcome: 'allow', prompt_tokens: out.usage!.prompt_tokens, completion_tokens: 12, truncated: false });
    expect(s.key_id).to.be.a('string').and.not.equal(USER);
    expect(s.finish_reasons).to.deep.equal(['length']);
    expect(s.ttft_ms).to.be.greaterThan(0).and.at.most(s.latency_ms);
    expect(s.timings_ms.prefill).to.be.greaterThan(0);
    expect(s.timings_ms.decode).to.be.greaterThan(0);
    expect(s.inter_token_ms!.p50).to.be.at.least(0).and.at.most(s.inter_token_ms!.max);
    expect(s.decode_tokens_per_s).to.be.greaterThan(0);
    expect(s, 'the list carries no per-token times').to.not.have.property('choices');

    const d = await getJson<Detail>(server, `/debug/traces/${id}`);
    expect(d.status).to.equal(200);
    expect(d.body.object).to.equal('debug.token_trace');
    expect(d.body.choices).to.have.length(1);
    const times = d.body.choices[0]!.token_times_ms;
    expect(times).to.have.length(12);
    expect(times[0]).to.equal(d.body.ttft_ms);
    for (let i = 1; i < times.length; i++) expect(times[i]!).to.be.at.least(times[i - 1]!);
    expect(d.body.inter_token_ms!.max).to.be.closeTo(Math.max(...times.slice(1).map((t, i) => t - times[i]!)), 0.02);
  });

  it('n=2: one trace, a token-time list per choice, counts adding up to the usage', async () => {
    const id = 'debug-trace-n2';
    const r = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${USER}`, 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ prompt: 'two ways', max_tokens: 5, n: 2, ignore_eos: true, seed: 3 }),
    });
    const body = (await r.json()) as { usage: { completion_tokens: number } };
    expect(r.status).to.equal(200);
    const d = await getJson<Detail>(server, `/debug/traces/${id}`);
    expect(d.body.choices.map((c) => c.token_times_ms.length)).to.deep.equal([5, 5]);
    expect(d.body.completion_tokens).to.equal(body.usage.completion_tokens);
  });

  it('a client that leaves mid-stream is traced as 499 cancelled, with the tokens it got', async () => {
    const id = 'debug-trace-gone';
    const ac = new AbortController();
    const r = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${USER}`, 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ prompt: 'a long one', max_tokens: 1500, ignore_eos: true, stream: true }),
      signal: ac.signal,
    });
    const reader = r.body!.getReader();
    await reader.read();
    ac.abort();
    const s = await until('the cancelled trace', async () => (await getJson<DebugDoc>(server, '/debug')).body.token_traces.find((t) => t.request_id === id));
    expect(s).to.include({ status: 499, outcome: 'cancelled' });
    expect(s.completion_tokens).to.be.greaterThan(0).and.below(1500);
  });

  it('engines report their state and the step loop split', async () => {
    const { body } = await getJson<DebugDoc>(server, '/debug');
    expect(body.engines.length).to.be.greaterThan(0);
    const busy = body.engines.filter((e) => e.state === 'ready' && e.status !== null && e.status.steps > 0);
    expect(busy, 'an engine that ran the requests above').to.not.be.empty;
    const split = busy[0]!.status!.step_ms;
    expect(split.steps).to.be.greaterThan(0);
    expect(split.decode).to.be.greaterThan(0);
    expect(split.sample).to.be.at.least(0);
    expect(body.adapters).to.deep.equal([]);
  });

  it('admin only; an unknown request id is a 404 in the OpenAI error shape', async () => {
    const denied = await getJson<{ error: { code: string } }>(server, '/debug', USER);
    expect(denied.status).to.equal(403);
    expect((await getJson(server, '/debug/traces/debug-trace-one', USER)).status).to.equal(403);
    const none = await getJson<{ error: { code: string; message: string } }>(server, '/debug/traces/never-seen');
    expect(none.status).to.equal(404);
    expect(none.body.error.code).to.equal('not_found');
    expect(none.body.error.message).to.include('never-seen');
  });
});
