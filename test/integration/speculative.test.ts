/**
 * Speculative decoding on the real server (tiny model, real llama.cpp): greedy output is identical
 * with speculation off, with the target as its own draft (proposals accepted: the accept path) and
 * with a differently seeded draft of the same vocabulary (proposals mostly refused: the trim path),
 * including a stop sequence and max_tokens ending a request in the middle of a verified chunk; the
 * inferflux_spec_* counters move accordingly; a non-greedy request on a speculating server does not
 * speculate.
 */
import { expect } from 'chai';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureModel } from '../../src/runtime/gguf/generate.js';
import { api, metric, startServer, tinyModel, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const PROMPTS = ['Once upon a time', 'The quick brown fox', 'hello world 1 2 3', 'a b c d e f g'];
const MAX_TOKENS = 40;

interface Result {
  text: string;
  finish: string;
  tokens: number;
}

async function complete(s: RunningServer, prompt: string, extra: Record<string, unknown> = {}): Promise<Result> {
  const r = await api(s, 'POST', '/v1/completions', { model: MODEL, prompt, max_tokens: MAX_TOKENS, temperature: 0, ...extra }, null);
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  return { text: r.body.choices[0].text, finish: r.body.choices[0].finish_reason, tokens: r.body.usage.completion_tokens };
}

/** Every prompt at once (so verification shares batches with other sequences), then one with a stop sequence. */
async function run(s: RunningServer, stops: string[]): Promise<Result[]> {
  const out = await Promise.all(PROMPTS.map((p) => complete(s, p)));
  for (let i = 0; i < PROMPTS.length; i++) out.push(await complete(s, PROMPTS[i]!, { stop: [stops[i]!], max_tokens: 30 }));
  out.push(await complete(s, PROMPTS[0]!, { max_tokens: 7 }));
  return out;
}

const spec = (s: RunningServer, name: string) => metric(s.url, `inferflux_spec_${name}_total{model="${MODEL}"}`);

describe('speculative decoding (real server)', function () {
  this.timeout(180_000);
  let baseline: Result[];
  let stops: string[];
  let otherDraft: string;

  before(async () => {
    const off = await startServer();
    try {
      const plain = await Promise.all(PROMPTS.map((p) => complete(off, p)));
      // A stop sequence in the middle of each greedy answer: it must end the request at the same place.
      stops = plain.map((r) => r.text.slice(Math.floor(r.text.length / 2), Math.floor(r.text.length / 2) + 3));
      for (const s of stops) expect(s.length).to.equal(3);
      baseline = await run(off, stops);
      expect(await spec(off, 'chunks')).to.equal(0);
    } finally {
      await off.stop();
    }
    otherDraft = (await ensureModel('tiny', join(tmpdir(), 'inferflux-test-models', 'tiny-seed7.gguf'), 7)).path;
  });

  it('the target as its own draft: identical output, draft tokens accepted', async () => {
    const s = await startServer({ INFERFLUX_SPECULATIVE_ENABLED: 'true', INFERFLUX_SPEC_DRAFT_MODEL: await tinyModel(), INFERFLUX_SPEC_CHUNK_SIZE: '4' });
    try {
      expect(await run(s, stops)).to.deep.equal(baseline);
      const chunks = await spec(s, 'chunks');
      const accepted = await spec(s, 'chunks_accepted');
      const reused = await spec(s, 'tokens_reused');
      expect(chunks).to.be.greaterThan(10);
      // The same weights propose the target's own greedy choices: nearly every chunk survives.
      expect(accepted / chunks).to.be.greaterThan(0.8);
      expect(reused).to.be.greaterThan(chunks);
      // A sampled request does not speculate.
      await complete(s, PROMPTS[1]!, { temperature: 0.8, seed: 3 });
      expect(await spec(s, 'chunks')).to.equal(chunks);
    } finally {
      await s.stop();
    }
  });

  it('a different draft of the same vocabulary: identical output, proposals refused and trimmed', async () => {
    const s = await startServer({ INFERFLUX_SPECULATIVE_ENABLED: 'true', INFERFLUX_SPEC_DRAFT_MODEL: otherDraft, INFERFLUX_SPEC_MAX_PREFILL: '8' });
    try {
      expect(await run(s, stops)).to.deep.equal(baseline);
      const chunks = await spec(s, 'chunks');
      const accepted = await spec(s, 'chunks_accepted');
      expect(chunks).to.be.greaterThan(10);
      expect(accepted).to.be.lessThan(chunks / 2);
      expect(await spec(s, 'tokens_reused')).to.be.at.least(accepted);
    } finally {
      await s.stop();
    }
  });
});
