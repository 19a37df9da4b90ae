/**
 * Priority preemption on the real engine: a high-priority request suspends a running
 * low-priority one (its KV is saved), runs, and the suspended request resumes with output
 * identical to an uninterrupted run (greedy decoding).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';

async function complete(url: string, body: object, headers: Record<string, string> = {}): Promise<{ text: string; finish: string; usage: { completion_tokens: number } }> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: MODEL, temperature: 0, ignore_eos: true, ...body }),
  });
  expect(res.status, await res.clone().text()).to.equal(200);
  const j = (await res.json()) as { choices: { text: string; finish_reason: string }[]; usage: { completion_tokens: number } };
  return { text: j.choices[0]!.text, finish: j.choices[0]!.finish_reason, usage: j.usage };
}

describe('priority preemption (real engine)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ifx-fair-'));
    const cfg = join(dir, 'server.yaml');
    writeFileSync(cfg, 'runtime:\n  sequences_per_worker: 1\n  fairness:\n    enable_preemption: true\n    high_priority_threshold: 5\n  threads_per_worker: 1\nscheduler:\n  decode_pool_size: 1\n');
    server = await startServer({ INFERFLUX_CONFIG: cfg });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('suspends a running low-priority request for a high-priority one and resumes it with identical output', async () => {
    const long = { prompt: 'A long story about preemption', max_tokens: 800 };
    const alone = await complete(server.url, long);
    expect(alone.usage.completion_tokens).to.equal(800);

    const order: string[] = [];
    // Stream the low-priority request so the urgent one is sent only once it is surely generating.
    let resolveGenerating!: () => void;
    const generating = new Promise<void>((r) => (resolveGenerating = r));
    const low = (async () => {
      const res = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, temperature: 0, ignore_eos: true, ...long, priority: 0, stream: true, stream_options: { include_usage: true } }),
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      let text = '';
      let tokens = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n\n')) !== -1) {
          const line = buf.slice(0, nl).replace(/^data: /, '');
          buf = buf.slice(nl + 2);
          if (line === '[DONE]' || line.startsWith(':')) continue;
          const chunk = JSON.parse(line) as { choices: { text: string }[]; usage?: { completion_tokens: number } | null };
          text += chunk.choices[0]?.text ?? '';
          if (chunk.usage) tokens = chunk.usage.completion_tokens;
          if (text.length > 20) resolveGenerating();
        }
      }
      order.push('low');
      return { text, usage: { completion_tokens: tokens } };
    })();
    await generating;
    const high = complete(server.url, { prompt: 'Urgent', max_tokens: 5 }, { 'x-inferflux-priority': '9' }).then((r) => (order.push('high'), r));
    const [lowR, highR] = await Promise.all([low, high]);
    expect(order).to.deep.equal(['high', 'low']);
    expect(highR.usage.completion_tokens).to.equal(5);
    expect(lowR.usage.completion_tokens).to.equal(800);
    expect(lowR.text).to.equal(alone.text);
    expect(await metric(server.url, 'inferflux_fairness_preemptions_total')).to.be.at.least(1);
    expect(await metric(server.url, 'inferflux_fairness_resumes_total')).to.be.at.least(1);
    expect(await metric(server.url, 'inferflux_fairness_tokens_total{priority="9"}')).to.equal(5);
    // The saved KV state was consumed on resume: nothing is left behind in tmpfs.
    const leftovers = readdirSync('/dev/shm').filter((f) => f.startsWith(`ifx-${server.proc.pid}-`) && f.endsWith('.kvstate'));
    expect(leftovers).to.deep.equal([]);
  });

  it('rejects a malformed priority header', async () => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-inferflux-priority': 'urgent' },
      body: JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 1 }),
    });
    expect(res.status).to.equal(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).to.equal('priority');
  });

  it('changes runtime.fairness live through the admin API', async () => {
    const put = (body: object) =>
      fetch(`${server.url}/v1/admin/fairness`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const r = await put({ enable_preemption: false, max_timeslice_tokens: 64 });
    expect(r.status).to.equal(200);
    expect(await r.json()).to.deep.equal({ object: 'fairness', enable_preemption: false, high_priority_threshold: 5, max_timeslice_tokens: 64 });
    expect(await (await fetch(`${server.url}/v1/admin/fairness`)).json()).to.deep.include({ enable_preemption: false, max_timeslice_tokens: 64 });
    expect((await put({ max_timeslice_tokens: -1 })).status).to.equal(400);
    expect((await put({})).status).to.equal(400);
  });
});
