/**
 * Log probabilities on the real engine through the `openai` client: chat (`logprobs`,
 * `top_logprobs`) and legacy completions (`logprobs: k`), streamed and not. Greedy decoding picks
 * the most likely token, so each sampled token must be its own top alternative with the same
 * logprob; probabilities are <= 1, alternatives descend, and the token texts spell the answer.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { serverWithOpenAI } from '../helpers/server.js';

const MODEL = 'tiny-seed0';

describe('logprobs (real engine, openai client)', function () {
  this.timeout(120_000);
  const ctx = serverWithOpenAI();

  function checkGreedy(entries: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[], k: number): void {
    expect(entries.length).to.be.greaterThan(0);
    for (const e of entries) {
      expect(e.logprob).to.be.at.most(0);
      expect(e.top_logprobs).to.have.length(k);
      for (let i = 1; i < k; i++) expect(e.top_logprobs[i]!.logprob).to.be.at.most(e.top_logprobs[i - 1]!.logprob);
      expect(e.top_logprobs[0]!.logprob).to.be.closeTo(e.logprob, 1e-5);
    }
  }

  it('chat, not streamed: one entry per completion token, greedy = top alternative, texts spell the answer', async () => {
    const res = await ctx.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Say something.' }],
      max_tokens: 10,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
      // @ts-expect-error llama.cpp/vLLM extension
      ignore_eos: true,
    });
    const content = res.choices[0]!.logprobs!.content!;
    expect(content).to.have.length(res.usage!.completion_tokens);
    checkGreedy(content, 3);
    expect(content.map((e) => e.token).join('')).to.equal(res.choices[0]!.message.content);
    expect(content[0]!.bytes).to.deep.equal([...Buffer.from(content[0]!.token, 'utf8')]);
  });

  it('chat, streamed: the same entries arrive with the deltas', async () => {
    const body = {
      model: MODEL,
      messages: [{ role: 'user' as const, content: 'Say something.' }],
      max_tokens: 10,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
      ignore_eos: true,
    };
    const whole = await ctx.client.chat.completions.create(body as never);
    const stream = await ctx.client.chat.completions.create({ ...body, stream: true } as never);
    const got: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[] = [];
    let text = '';
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) {
      const c = chunk.choices[0];
      if (!c) continue;
      text += c.delta.content ?? '';
      if (c.logprobs?.content) got.push(...c.logprobs.content);
    }
    checkGreedy(got, 2);
    const ref = (whole as OpenAI.ChatCompletion).choices[0]!.logprobs!.content!;
    expect(got.map((e) => [e.token, e.logprob])).to.deep.equal(ref.map((e) => [e.token, e.logprob]));
    expect(text).to.equal((whole as OpenAI.ChatCompletion).choices[0]!.message.content);
  });

  it('legacy completions: tokens, token_logprobs, top_logprobs maps and text offsets', async () => {
    const res = (await ctx.client.completions.create({ model: MODEL, prompt: 'Once upon', max_tokens: 6, temperature: 0, logprobs: 2, ignore_eos: true } as never)) as OpenAI.Completion;
    const lp = res.choices[0]!.logprobs!;
    expect(lp.tokens).to.have.length(6);
    expect(lp.tokens!.join('')).to.equal(res.choices[0]!.text);
    expect(lp.token_logprobs!.every((x) => x <= 0)).to.equal(true);
    expect(lp.top_logprobs!.every((m) => Object.keys(m).length >= 1 && Object.keys(m).length <= 2)).to.equal(true);
    let at = 0;
    lp.tokens!.forEach((t, i) => {
      expect(lp.text_offset![i]).to.equal(at);
      at += t.length;
    });
  });

  it('no logprobs unless asked; top_logprobs without logprobs and more than 20 are 400s', async () => {
    const res = await ctx.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
    expect(res.choices[0]!.logprobs).to.equal(null);
    for (const extra of [{ top_logprobs: 2 }, { logprobs: true, top_logprobs: 21 }]) {
      const err = await ctx.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 2, ...extra }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).to.equal('top_logprobs');
    }
  });
});
