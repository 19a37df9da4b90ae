/**
 * Long-prompt isolation on the real engine (unified mode, two workers): a prompt over
 * scheduler.isolate_prompt_tokens moves the stream running on its worker to the other worker
 * (suspend, KV saved, resumed there), and that stream's greedy output is identical to an
 * undisturbed run. With `pack` placement (the default on two cores) both streams share one worker
 * and the long prompt goes to the idle one: nothing moves, and the output is just as identical.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';
const MAX_TOKENS = 1500;

for (const placement of ['spread', 'pack'] as const) {
  describe(`long-prompt isolation (real engine, 2 workers, ${placement} placement)`, function () {
    this.timeout(180_000);
    let server: RunningServer;
    let dir: string;
    let client: OpenAI;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'ifx-isolate-'));
      const cfg = join(dir, 'server.yaml');
      writeFileSync(cfg, `runtime:\n  sequences_per_worker: 2\n  threads_per_worker: 1\nscheduler:\n  decode_pool_size: 2\n  placement: ${placement}\n  isolate_prompt_tokens: 64\n`);
      server = await startServer({ INFERFLUX_CONFIG: cfg, INFERFLUX_CORES: '2' });
      client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    });
    after(async () => {
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const body = (prompt: string) => ({ model: MODEL, prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true });

    /** Streams a completion; `onText` sees the text so far. */
    async function stream(prompt: string, onText: (text: string) => void): Promise<string> {
      const s = await client.completions.create({ ...body(prompt), stream: true } as never);
      let text = '';
      for await (const c of s as unknown as AsyncIterable<OpenAI.Completion>) {
        text += c.choices[0]?.text ?? '';
        onText(text);
      }
      return text;
    }

    const title = placement === 'spread'
      ? 'moves the stream off the long prompt\'s worker and it continues with identical output'
      : 'puts the long prompt on the idle worker, moves nothing, and the streams\' output is identical';
    it(title, async () => {
      const prompts = ['The first stream tells a story', 'A second stream about something else'];
      const alone = await Promise.all(prompts.map(async (p) => (await client.completions.create(body(p) as never)).choices[0]!.text));
      const migrationsBefore = await metric(server.url, 'inferflux_scheduler_migrations_total');

      // Both streams running (one per worker under spread, together under pack), then the long prompt.
      let started = 0;
      let bothRunning!: () => void;
      const running = new Promise<void>((r) => (bothRunning = r));
      const streams = prompts.map((p) => {
        let seen = false;
        return stream(p, (text) => {
          if (!seen && text.length > 20) {
            seen = true;
            if (++started === 2) bothRunning();
          }
        });
      });
      await running;
      const long = await client.completions.create({ model: MODEL, prompt: 'many words in a long prompt '.repeat(40), max_tokens: 1, temperature: 0 } as never);
      expect(long.usage!.prompt_tokens).to.be.greaterThan(64);

      const texts = await Promise.all(streams);
      expect(texts).to.deep.equal(alone);
      expect(await metric(server.url, 'inferflux_scheduler_migrations_total')).to.equal(migrationsBefore + (placement === 'spread' ? 1 : 0));
    });
  });
}
