/**
 * Batched `/v1/completions` prompts on the real engine through the `openai` client: every batched
 * choice (greedy) equals the same prompt sent alone, streamed and not, for text and token prompts;
 * usage is the sum; bad prompts and too many prompts are 400s before any work.
 */
import { expect } from 'chai';
import OpenAI, { APIError } from 'openai';
import { MAX_BATCH_PROMPTS } from '../../src/generation/fan-in.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
// Greedy and a fixed length: the text depends only on the prompt. The response cache is off by
// default, so every request below really runs.
const GREEDY = { model: MODEL, max_tokens: 6, temperature: 0, n: 2, ignore_eos: true } as const;

describe('batched completion prompts on the real engine', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    server = await startServer();
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    expect(await server?.stop()).to.equal(0);
  });

  for (const prompts of [['Once upon a time', 'The cat sat', 'Hello'], [[5, 6, 7], [300, 12]]] as const) {
    it(`${typeof prompts[0] === 'string' ? 'strings' : 'token arrays'}: each choice equals its prompt alone, streamed and not`, async () => {
      const alone = await Promise.all(prompts.map((prompt) => client.completions.create({ ...GREEDY, prompt: prompt as string })));
      const batch = await client.completions.create({ ...GREEDY, prompt: prompts as unknown as string[] });
      const expected = alone.flatMap((r) => r.choices.map((c) => c.text));
      expect(expected.every((t) => t.length > 0)).to.equal(true);
      expect(batch.choices.map((c) => [c.index, c.text, c.finish_reason])).to.deep.equal(expected.map((t, i) => [i, t, 'length']));
      expect(batch.usage).to.deep.include({
        prompt_tokens: alone.reduce((a, r) => a + r.usage!.prompt_tokens, 0),
        completion_tokens: 6 * 2 * prompts.length,
      });

      const stream = await client.completions.create({ ...GREEDY, prompt: prompts as unknown as string[], stream: true, stream_options: { include_usage: true } });
      const texts = expected.map(() => '');
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        for (const c of chunk.choices) texts[c.index] += c.text;
        usage = chunk.usage ?? usage;
      }
      expect(texts).to.deep.equal(expected);
      expect(usage).to.deep.include({ total_tokens: batch.usage!.total_tokens });
    });
  }

  it('a bad prompt is a 400 naming its index; too many prompts are refused', async () => {
    const refused = async (prompt: unknown): Promise<APIError> => {
      const err = await client.completions.create({ ...GREEDY, prompt: prompt as string }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(APIError);
      expect((err as APIError).status).to.equal(400);
      return err as APIError;
    };
    const long = await refused(['Hi', 'Hi', 'word '.repeat(3000)]);
    expect(long).to.include({ code: 'context_length_exceeded', param: 'prompt[2]' });
    const vocab = await refused([[1, 2], [1, 10_000_000]]);
    expect(vocab).to.include({ code: 'invalid_request', param: 'prompt[1]' });
    expect(vocab.message).to.contain('10000000');
    const many = await refused(Array.from({ length: MAX_BATCH_PROMPTS + 1 }, () => 'Hi'));
    expect(many).to.include({ code: 'invalid_request', param: 'prompt' });
    // Nothing was admitted for any of them: no prompt tokens reached an engine.
    const promptTokens = async (): Promise<number> => {
      const line = (await (await fetch(`${server.url}/metrics`)).text()).split('\n').find((l) => l.startsWith('inferflux_model_prompt_tokens_total{'));
      return Number(line?.split(' ').pop() ?? 0);
    };
    const before = await promptTokens();
    await refused(['Hi', 'word '.repeat(3000)]);
    expect(await promptTokens()).to.equal(before);
  });
});
