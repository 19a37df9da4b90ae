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
    writeFileSync(cfg, 'runtime:\n  sequences_per_worker: 1\n  fairness:\n    enable_preemption: true\n    high_priority_threshold: 5\nscheduler:\n  decode_pool_size: 1\n');
    server = await startServer({ INFERFLUX_CONFIG: cfg });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('suspends a running low-priority request for a high-priority one and resumes it with identical output', async () => {
    const long = { prompt: 'A long story about preemption', max_tokens: 600 };
    const alone = await complete(server.url, long);
    expect(alone.usage.completion_tokens).to.equal(600);

    const order: string[] = [];
    const low = complete(server.url, { ...long, priority: 0 }).then((r) => (order.push('low'), r));
    // Let the low-priority request start generating, then send the urgent one.
    while ((await metric(server.url, `inferflux_active_sequences{model="${MODEL}"}`)) < 1) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    const high = complete(server.url, { prompt: 'Urgent', max_tokens: 5 }, { 'x-inferflux-priority': '9' }).then((r) => (order.push('high'), r));
    const [lowR, highR] = await Promise.all([low, high]);
    expect(order).to.deep.equal(['high', 'low']);
    expect(highR.usage.completion_tokens).to.equal(5);
    expect(lowR.usage.completion_tokens).to.equal(600);
    expect(lowR.text).to.equal(alone.text);
    expect(await metric(server.url, 'inferflux_fairness_preemptions_total')).to.be.at.least(1);
    expect(await metric(server.url, 'inferflux_fairness_resumes_total')).to.be.at.least(1);
    expect(await metric(server.url, 'inferflux_fairness_tokens_total{priority="9"}')).to.equal(5);
    // The saved KV state was consumed on resume: nothing is left behind in tmpfs.
    const leftovers = readdirSync('/dev/shm').filter((f) => f.startsWith(`ifx-${server.proc.pid}-`));
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
});
