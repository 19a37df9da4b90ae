/**
 * Batched prompts on `/v1/completions` (fake gateway): each prompt is its own generation, choices
 * numbered prompt * n + i, usage summed, streamed chunks carry their index; a bad prompt is a 400
 * naming its index before any generation starts; the number of prompts is bounded.
 */
import { expect } from 'chai';
import { InferFluxError } from '../../src/errors.js';
import type { GenerateInput, TokenSink } from '../../src/generation/contract.js';
import { MAX_BATCH_PROMPTS } from '../../src/generation/fan-in.js';
import { createHttpServer } from '../../src/http/server.js';
import { Metrics } from '../../src/metrics.js';
import { GuardrailEngine } from '../../src/policy/guardrails/guardrail-engine.js';
import { CREATED, FakeGateway, json, sseEvents, startServer, testConfig, type FakeHandle, type TestServer } from './http-fixtures.js';

function post(t: TestServer, body: unknown) {
  return fetch(`${t.base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

const label = (input: GenerateInput): string => (input.prompt.kind === 'text' ? input.prompt.text : input.prompt.kind === 'tokens' ? input.prompt.tokens.join(',') : 'chat');

/** Each choice says which prompt and choice it is; prompt tokens = its label's length; later prompts finish first. */
function echoScript(input: GenerateInput, sink: TokenSink, handle: FakeHandle): void {
  const prompt = label(input);
  const delay = input.requestId.endsWith('-0') ? 5 : 0;
  setTimeout(() => {
    if (handle.cancelled) return;
    sink.onStart({ model: 'tiny', promptTokens: prompt.length, created: CREATED });
    for (let c = 0; c < input.n; c++) {
      sink.onText(c, `${prompt}#`);
      sink.onText(c, `${c}`);
      sink.onChoiceEnd(c, 'stop', 2);
    }
    sink.onEnd({ promptTokens: prompt.length, completionTokens: 2 * input.n, cachedTokens: 1 });
  }, delay);
}

describe('http: batched completion prompts', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await startServer();
    t.gateway.script = echoScript;
  });
  afterEach(() => t.server.close(100));

  it('an array of strings: one generation per prompt, choices numbered prompt * n + i, usage summed', async () => {
    const r = await post(t, { prompt: ['a', 'bb', 'ccc'], n: 2, max_tokens: 4, seed: 3 });
    expect(r.status).to.equal(200);
    const body = await json(r);
    expect(body.choices).to.deep.equal(
      ['a', 'bb', 'ccc'].flatMap((p) => [0, 1].map((c) => ({ text: `${p}#${c}`, logprobs: null, finish_reason: 'stop' }))).map((c, index) => ({ index, ...c })),
    );
    expect(body.usage).to.deep.equal({ prompt_tokens: 6, completion_tokens: 12, total_tokens: 18, prompt_tokens_details: { cached_tokens: 3 } });
    expect(t.gateway.inputs.map((i) => i.prompt)).to.deep.equal(['a', 'bb', 'ccc'].map((text) => ({ kind: 'text', text })));
    const id = r.headers.get('x-request-id');
    expect(t.gateway.inputs.map((i) => [i.requestId, i.n, i.params.seed])).to.deep.equal([0, 1, 2].map((p) => [`${id}-${p}`, 2, 3]));
  });

  it('token arrays, streamed: every chunk carries its choice index', async () => {
    const r = await post(t, { prompt: [[1, 2], [3]], n: 2, stream: true, stream_options: { include_usage: true } });
    expect(r.status).to.equal(200);
    const events = sseEvents(await r.text()) as any[];
    expect(events.pop()).to.equal('[DONE]');
    expect(events.pop().usage).to.deep.equal({ prompt_tokens: 4, completion_tokens: 8, total_tokens: 12, prompt_tokens_details: { cached_tokens: 2 } });
    const texts: string[] = ['', '', '', ''];
    const reasons: (string | null)[] = [null, null, null, null];
    for (const e of events) {
      expect(e.choices).to.have.length(1);
      texts[e.choices[0].index] += e.choices[0].text;
      if (e.choices[0].finish_reason) reasons[e.choices[0].index] = e.choices[0].finish_reason;
    }
    expect(texts).to.deep.equal(['1,2#0', '1,2#1', '3#0', '3#1']);
    expect(reasons).to.deep.equal(['stop', 'stop', 'stop', 'stop']);
    // The first prompt finished last: chunks interleave in the order they were produced.
    expect(events[0].choices[0].index).to.equal(2);
  });

  it('a prompt too long is a 400 naming its index, before any generation starts', async () => {
    // The fake tokenizer counts a text prompt as its JSON; the fake model's context is 2048.
    const r = await post(t, { prompt: ['ok', 'x'.repeat(3000), 'fine'] });
    expect(r.status).to.equal(400);
    const { error } = await json(r);
    expect(error.code).to.equal('context_length_exceeded');
    expect(error.param).to.equal('prompt[1]');
    expect(error.message).to.match(/^prompt\[1\]: The prompt is \d+ tokens/);
    // Streamed too; a max_tokens that leaves one prompt no room keeps its param and names the prompt.
    const bad = await json(await post(t, { prompt: ['ok', 'x'.repeat(1900)], max_tokens: 200, stream: true }));
    expect(bad.error.param).to.equal('max_tokens');
    expect(bad.error.message).to.match(/^prompt\[1\]: The prompt \(\d+ tokens\) plus max_tokens \(200\)/);
    expect(t.gateway.inputs).to.have.length(0);
  });

  it(`at most ${MAX_BATCH_PROMPTS} prompts; forms never mix`, async () => {
    const many = await post(t, { prompt: Array.from({ length: MAX_BATCH_PROMPTS + 1 }, () => 'p') });
    expect(many.status).to.equal(400);
    expect((await json(many)).error).to.deep.include({ code: 'invalid_request', param: 'prompt', message: `'prompt' holds ${MAX_BATCH_PROMPTS + 1} prompts; at most ${MAX_BATCH_PROMPTS} per request.` });
    for (const prompt of [['a', [1]], [1, [2]], [[]]]) {
      const r = await post(t, { prompt });
      expect(r.status, JSON.stringify(prompt)).to.equal(400);
      expect((await json(r)).error.param).to.match(/^prompt/);
    }
    const ok = await post(t, { prompt: Array.from({ length: MAX_BATCH_PROMPTS }, () => 'p') });
    expect((await json(ok)).choices).to.have.length(MAX_BATCH_PROMPTS);
    expect(t.gateway.inputs).to.have.length(MAX_BATCH_PROMPTS);
  });

  it('a failure after admission cancels the other prompts and ends the response', async () => {
    // Prompt 'a' never finishes unless cancelled.
    t.gateway.script = (input, sink) => {
      if (label(input) === 'boom') setTimeout(() => sink.onError(new InferFluxError('worker_crashed')), 5);
    };
    const r = await post(t, { prompt: ['a', 'boom'] });
    expect(r.status).to.equal(503);
    expect(t.gateway.handles.map((h) => h.cancelled)).to.deep.equal([true, true]);
  });

  it('guardrails check every prompt: one denied refuses the batch, redactions apply per prompt', async () => {
    const gateway = new FakeGateway();
    gateway.script = echoScript;
    const guardrails = new GuardrailEngine({ blocklist: ['classified'], pii: { action: 'redact', kinds: ['email'] }, opaEndpoint: '', opaTimeoutMs: 200, opaFailMode: 'closed' });
    const srv = createHttpServer({ config: testConfig(), gateway, metrics: new Metrics({ defaultMetrics: false }), guardrails });
    const g: TestServer = { gateway, metrics: new Metrics({ defaultMetrics: false }), server: srv, port: await srv.listen(), base: '' };
    g.base = `http://127.0.0.1:${g.port}`;
    try {
      const denied = await post(g, { prompt: ['hello', 'the classified plan'] });
      expect(denied.status).to.equal(400);
      expect((await json(denied)).error.code).to.equal('guardrail_denied');
      expect(gateway.inputs).to.have.length(0);
      const ok = await post(g, { prompt: ['mail me at a@example.com', 'hi'] });
      expect(ok.status).to.equal(200);
      expect(gateway.inputs.map((i) => (i.prompt.kind === 'text' ? i.prompt.text : ''))).to.deep.equal(['mail me at [REDACTED:email]', 'hi']);
    } finally {
      srv.close(100);
    }
  });
});
