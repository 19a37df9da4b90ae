/**
 * runtime.flash_attention reaches llama.cpp: with it off the engine computes attention another
 * way (KQ and KQV matrix products, V stored transposed), so the same greedy request's logprobs
 * differ in their low bits from the default (on, as llama-server's auto resolves on a CPU), and
 * the prefix cache still restores saved state under the other V layout.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { startServer, type RunningServer } from '../helpers/server.js';

const PROMPT = 'Flash attention changes how the attention scores are summed, not what they mean, in every layer';

describe('runtime.flash_attention (real server)', function () {
  this.timeout(180_000);
  const servers: RunningServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  async function greedy(server: RunningServer) {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const res = await client.completions.create({ model: 'tiny-seed0', prompt: PROMPT, max_tokens: 6, temperature: 0, logprobs: 1, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    const choice = res.choices[0]!;
    return { text: choice.text, logprobs: choice.logprobs!.token_logprobs!, cached: (res.usage as { prompt_tokens_details?: { cached_tokens?: number } }).prompt_tokens_details?.cached_tokens ?? 0 };
  }

  it('off computes attention without the flash kernel, and its saved prefixes load back', async () => {
    const on = await startServer({ INFERFLUX_DECODE_POOL_SIZE: '1' });
    servers.push(on);
    expect(on.logs()).to.contain('(flash attention auto)');
    const withFlash = await greedy(on);

    const off = await startServer({ INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_FLASH_ATTENTION: 'off' });
    servers.push(off);
    expect(off.logs()).to.contain('(flash attention off)');
    const first = await greedy(off);
    expect(first.logprobs).to.have.length(6);
    expect(first.logprobs, 'the same numbers would mean the setting never reached llama.cpp').to.not.deep.equal(withFlash.logprobs);
    for (let i = 0; i < 6; i++) expect(first.logprobs[i]).to.be.closeTo(withFlash.logprobs[i]!, 0.05);

    const again = await greedy(off);
    expect(again.cached, 'the prompt is served from the prefix cache').to.be.greaterThan(0);
    expect(again.text).to.equal(first.text);
    expect(again.logprobs).to.deep.equal(first.logprobs);
  });
});
