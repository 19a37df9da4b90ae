/**
 * Greedy, EOS-ignoring `/v1/completions` on the tiny test model, for the prefix-cache tests: the
 * text, the prompt's token count and how many of its tokens came from cached KV.
 */
import { expect } from 'chai';

export const TINY_MODEL = 'tiny-seed0';

/** `n` deterministic pseudo-words: a different seed gives a prompt sharing no prefix. */
export function words(seed: number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`w${(seed * 7919 + i * 104729) % 9973}`);
  return out.join(' ');
}

export interface GreedyCompletion {
  text: string;
  prompt: number;
  cached: number;
}

export async function greedyCompletion(url: string, prompt: string, maxTokens = 8): Promise<GreedyCompletion> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: TINY_MODEL, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true }),
  });
  expect(res.status).to.equal(200);
  const j = (await res.json()) as { choices: { text: string }[]; usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } };
  return { text: j.choices[0]!.text, prompt: j.usage.prompt_tokens, cached: j.usage.prompt_tokens_details.cached_tokens };
}
