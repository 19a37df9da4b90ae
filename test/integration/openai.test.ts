/**
 * The real server (actors + llama.cpp on the generated tiny model) through the `openai` client.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';

describe('OpenAI API on the real engine', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    server = await startServer();
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });

  after(async () => {
    const code = await server?.stop();
    expect(code, 'server exit code after SIGTERM').to.equal(0);
  });

  it('lists the model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).to.deep.equal([MODEL]);
    expect(list.data[0]).to.include({ object: 'model', owned_by: 'inferflux' });
  });

  it('chat completion: real tokens, usage and finish_reason length', async () => {
    const res = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Say hello.' }],
      max_tokens: 12,
      temperature: 0,
      // @ts-expect-error llama.cpp/vLLM extension
      ignore_eos: true,
    });
    expect(res.object).to.equal('chat.completion');
    expect(res.model).to.equal(MODEL);
    expect(res.choices).to.have.length(1);
    expect(res.choices[0]!.finish_reason).to.equal('length');
    expect(res.choices[0]!.message.role).to.equal('assistant');
    expect(res.choices[0]!.message.content).to.be.a('string').and.not.equal('');
    expect(res.usage!.completion_tokens).to.equal(12);
    expect(res.usage!.prompt_tokens).to.be.greaterThan(5);
    expect(res.usage!.total_tokens).to.equal(res.usage!.prompt_tokens + 12);
  });

  it('temperature 0 and a fixed seed are reproducible; different seeds differ', async () => {
    const ask = async (extra: Record<string, unknown>) =>
      (await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 24, ignore_eos: true, ...extra } as never)) as OpenAI.Completion;
    const g1 = await ask({ temperature: 0 });
    const g2 = await ask({ temperature: 0 });
    expect(g1.choices[0]!.text).to.equal(g2.choices[0]!.text);
    const s1 = await ask({ temperature: 1, seed: 1234 });
    const s2 = await ask({ temperature: 1, seed: 1234 });
    const s3 = await ask({ temperature: 1, seed: 999 });
    expect(s1.choices[0]!.text).to.equal(s2.choices[0]!.text);
    expect(s1.choices[0]!.text).to.not.equal(s3.choices[0]!.text);
  });

  it('streams chat chunks in OpenAI shape with include_usage', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Stream please' }],
      max_tokens: 16,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true, // llama.cpp/vLLM extension the openai types do not know
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let first = true;
    for await (const chunk of stream) {
      expect(chunk.object).to.equal('chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (first) {
        expect(choice.delta.role).to.equal('assistant');
        first = false;
      }
      text += choice.delta.content ?? '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    expect(finish).to.equal('length');
    expect(usage?.completion_tokens).to.equal(16);
    const whole = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Stream please' }],
      max_tokens: 16,
      temperature: 0,
      // @ts-expect-error extension
      ignore_eos: true,
    });
    expect(text).to.equal(whole.choices[0]!.message.content);
  });

  it('streams completions and honours stop sequences', async () => {
    const base = await client.completions.create({ model: MODEL, prompt: 'The answer is', max_tokens: 20, temperature: 0, ignore_eos: true } as never);
    const full = (base as OpenAI.Completion).choices[0]!.text;
    // Pick a stop string from the middle of the known greedy output.
    const cut = Math.max(1, Math.floor(full.length / 2));
    const stop = full.slice(cut, cut + 2);
    const stream = await client.completions.create({ model: MODEL, prompt: 'The answer is', max_tokens: 20, temperature: 0, ignore_eos: true, stop: [stop], stream: true } as never);
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.Completion>) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).to.equal(full.slice(0, full.indexOf(stop)));
    expect(finish).to.equal('stop');
  });

  it('n=3 returns three choices with one prompt count', async () => {
    const res = await client.completions.create({ model: MODEL, prompt: 'Hi', max_tokens: 5, n: 3, temperature: 1, seed: 5, ignore_eos: true } as never);
    const c = res as OpenAI.Completion;
    expect(c.choices.map((x) => x.index)).to.deep.equal([0, 1, 2]);
    expect(c.usage!.completion_tokens).to.equal(15);
  });

  it('8 simultaneous streams all finish with correct usage', async () => {
    const runs = Array.from({ length: 8 }, async (_, i) => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: `Parallel request number ${i}` }],
        max_tokens: 20 + i,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true, // llama.cpp/vLLM extension the openai types do not know
      } as OpenAI.ChatCompletionCreateParamsStreaming);
      let usage: OpenAI.CompletionUsage | undefined;
      let finish: string | null = null;
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      return { usage, finish, i };
    });
    const results = await Promise.all(runs);
    for (const r of results) {
      expect(r.finish).to.equal('length');
      expect(r.usage!.completion_tokens).to.equal(20 + r.i);
    }
  });

  it('a client that disconnects mid-stream stops its generation', async () => {
    const before = await metric(server.url, `inferflux_cancelled_requests_total{model="${MODEL}"}`);
    const ac = new AbortController();
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'long story', max_tokens: 1900, ignore_eos: true, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    let got = 0;
    while (got < 3) {
      const { value } = await reader.read();
      got += (new TextDecoder().decode(value).match(/data: /g) ?? []).length;
    }
    ac.abort();
    // The engine reports the cancelled generation, and no sequence stays busy.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await metric(server.url, `inferflux_cancelled_requests_total{model="${MODEL}"}`)) === before) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await metric(server.url, `inferflux_cancelled_requests_total{model="${MODEL}"}`)).to.equal(before + 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(await metric(server.url, `inferflux_active_sequences{model="${MODEL}",phase="decode"}`)).to.equal(0);
    const tokensA = await metric(server.url, `inferflux_model_completion_tokens_total{model="${MODEL}",backend="cpu"}`);
    await new Promise((r) => setTimeout(r, 300));
    const tokensB = await metric(server.url, `inferflux_model_completion_tokens_total{model="${MODEL}",backend="cpu"}`);
    expect(tokensB).to.equal(tokensA);
  });

  it('reuses the KV of a previous turn: cached_tokens reported, output unchanged', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You are a terse assistant that answers in one line. '.repeat(4) },
      { role: 'user', content: 'First question about prefix caching?' },
    ];
    const ask = (m: OpenAI.ChatCompletionMessageParam[]) =>
      client.chat.completions.create({ model: MODEL, messages: m, max_tokens: 8, temperature: 0, ignore_eos: true } as never) as Promise<OpenAI.ChatCompletion>;
    const first = await ask(messages);
    const again = await ask(messages);
    expect(again.choices[0]!.message.content).to.equal(first.choices[0]!.message.content);
    expect(again.usage!.prompt_tokens_details!.cached_tokens).to.equal(first.usage!.prompt_tokens - 1);
    const turn2 = await ask([...messages, { role: 'assistant', content: first.choices[0]!.message.content! }, { role: 'user', content: 'And a follow-up?' }]);
    // The whole first prompt is shared with the second turn's prompt.
    expect(turn2.usage!.prompt_tokens_details!.cached_tokens).to.be.at.least(first.usage!.prompt_tokens - 1);
  });

  it('reports readiness and metrics', async () => {
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).to.equal(200);
    const body = (await ready.json()) as { ready: boolean; pools: { name: string; ready: number }[] };
    expect(body.ready).to.equal(true);
    expect(body.pools.find((p) => p.name === 'decode')!.ready).to.be.greaterThan(0);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of [
      'inferflux_requests_total',
      'inferflux_request_latency_seconds',
      'inferflux_ttft_seconds',
      'inferflux_queue_wait_seconds',
      'inferflux_prefill_duration_seconds',
      'inferflux_decode_duration_seconds',
      'inferflux_scheduler_queue_depth',
      'inferflux_model_completion_tokens_total',
    ]) {
      expect(text, name).to.contain(name);
    }
  });
});
