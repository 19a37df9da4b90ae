/**
 * Disaggregated prefill/decode on the real engine: prefill workers evaluate prompts and hand
 * requests after their first token to decode workers through the SharedArrayBuffer KV ring.
 * Greedy output must be byte-identical to unified mode.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const PROMPTS = ['Tell me about disaggregated serving.', 'A second, rather different prompt with more words in it to prefill', 'x'];

async function greedyTexts(server: RunningServer): Promise<string[]> {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const out: string[] = [];
  for (const p of PROMPTS) {
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: p }], max_tokens: 24, temperature: 0, ignore_eos: true } as never) as OpenAI.ChatCompletion;
    out.push(chat.choices[0]!.message.content!);
    const stream = await client.completions.create({ model: MODEL, prompt: p, max_tokens: 24, temperature: 0, ignore_eos: true, stream: true } as never);
    let text = '';
    for await (const c of stream as unknown as AsyncIterable<OpenAI.Completion>) text += c.choices[0]?.text ?? '';
    out.push(text);
  }
  return out;
}

/** A prompt of several hundred tokens: its tiny-model state is larger than a quarter of a 128 KiB ring. */
async function longText(server: RunningServer): Promise<string> {
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: 'long prompt words '.repeat(100), max_tokens: 16, temperature: 0, ignore_eos: true }),
  });
  expect(res.status).to.equal(200);
  return ((await res.json()) as { choices: { text: string }[] }).choices[0]!.text;
}

describe('disaggregated prefill/decode (real engine)', function () {
  this.timeout(180_000);
  let unified: string[];
  let unifiedLong: string;

  before(async () => {
    const server = await startServer({ INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_THREADS_PER_WORKER: '1' });
    try {
      unified = await greedyTexts(server);
      unifiedLong = await longText(server);
    } finally {
      await server.stop();
    }
  });

  describe('with a ring too small for a long prompt\'s state', () => {
    it('hands the state over by its tmpfs path instead, with identical output', async () => {
      const server = await startServer({ INFERFLUX_PREFILL_POOL_SIZE: '1', INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_CORES: '2', INFERFLUX_KV_RING_BYTES: '131072' });
      try {
        expect(await longText(server)).to.equal(unifiedLong);
        expect(await metric(server.url, 'inferflux_kv_tickets_total')).to.equal(1);
      } finally {
        expect(await server.stop()).to.equal(0);
      }
    });
  });

  describe('with 1 prefill + 1 decode worker', () => {
    let server: RunningServer;
    before(async () => {
      server = await startServer({ INFERFLUX_PREFILL_POOL_SIZE: '1', INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_CORES: '2' });
    });
    after(async () => {
      expect(await server?.stop()).to.equal(0);
    });

    it('reports both pools in /readyz', async () => {
      const r = (await (await fetch(`${server.url}/readyz`)).json()) as { ready: boolean; pools: { name: string; workers: number; ready: number }[] };
      expect(r.ready).to.equal(true);
      expect(r.pools.filter((p) => p.name !== 'scheduler').map((p) => [p.name, p.workers, p.ready])).to.deep.equal([
        ['decode', 1, 1],
        ['prefill', 1, 1],
      ]);
    });

    it('produces byte-identical greedy output to unified mode', async () => {
      expect(await greedyTexts(server)).to.deep.equal(unified);
    });

    it('hands every request off through the KV ring, and 8 parallel streams finish', async () => {
      const before = await metric(server.url, 'inferflux_kv_tickets_total');
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const runs = Array.from({ length: 8 }, async (_, i) => {
        const stream = await client.completions.create({ model: MODEL, prompt: `parallel ${i} `.repeat(i + 1), max_tokens: 16 + i, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } } as never);
        let usage: OpenAI.CompletionUsage | undefined;
        for await (const c of stream as unknown as AsyncIterable<OpenAI.Completion>) if (c.usage) usage = c.usage;
        return usage!.completion_tokens;
      });
      expect(await Promise.all(runs)).to.deep.equal(Array.from({ length: 8 }, (_, i) => 16 + i));
      expect(await metric(server.url, 'inferflux_kv_tickets_total')).to.equal(before + 8);
      const transfers = await metric(server.url, `inferflux_kv_transfer_seconds_count{model="${MODEL}"}`);
      expect(transfers).to.be.at.least(8);
      // Every transfer was hydrated first, and loading the state is only part of the transfer.
      expect(await metric(server.url, `inferflux_kv_hydrate_seconds_count{model="${MODEL}"}`)).to.equal(transfers);
      const hydrateSum = await metric(server.url, `inferflux_kv_hydrate_seconds_sum{model="${MODEL}"}`);
      expect(hydrateSum).to.be.greaterThan(0);
      expect(hydrateSum).to.be.at.most(await metric(server.url, `inferflux_kv_transfer_seconds_sum{model="${MODEL}"}`));
      expect(await metric(server.url, `inferflux_active_sequences{model="${MODEL}",phase="prefill"}`)).to.equal(0);
    });
  });
});
