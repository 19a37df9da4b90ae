/**
 * Guardrails on the real server (actors + llama.cpp on the tiny model), configured through env at
 * start (INFERFLUX_GUARDRAIL_BLOCKLIST / _OPA_ENDPOINT / _OPA_TIMEOUT_MS) with an OPA stand-in the
 * test runs on loopback. Live policy changes are covered by the unit tests through
 * `PolicyService.update`; here each policy is set when the server starts.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';

interface OpaInputSeen {
  input: { prompt: string; model: string | null; route: string; tenant: string | null; key_id: string | null };
}

/** Decides by prompt text: `opa-deny` denies with a reason, `opa-slow` answers after 1 s, else allow. */
async function startOpa(): Promise<{ url: string; seen: OpaInputSeen[]; server: Server }> {
  const seen: OpaInputSeen[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(data) as OpaInputSeen;
      seen.push(body);
      const answer = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (body.input.prompt.includes('opa-deny')) return answer({ result: { allow: false, reason: 'no opa-deny talk' } });
      if (body.input.prompt.includes('opa-slow')) return void setTimeout(() => answer({ result: true }), 1000).unref();
      answer({ result: { allow: true } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/data/inferflux`, seen, server };
}

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: unknown; retryAfter?: string | null }> {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const out = { status: res.status, json: await res.json() };
  // Retry-After only where the status gives it a meaning, so the denials compare without it.
  return res.status === 503 ? { ...out, retryAfter: res.headers.get('retry-after') } : out;
}

function denied(reason: string) {
  return { error: { message: `Denied by guardrail policy: ${reason}.`, type: 'invalid_request_error', param: null, code: 'guardrail_denied' } };
}

/** Audit lines written so far (the writer batches; poll until `want` matches or time runs out). */
async function auditLines(server: RunningServer, want: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    let lines: Record<string, unknown>[] = [];
    try {
      lines = readFileSync(join(server.dir, 'audit.log'), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    } catch {
      // Not written yet.
    }
    if (lines.some(want) || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('guardrails on the real server', function () {
  this.timeout(180_000);
  let opa: Awaited<ReturnType<typeof startOpa>>;
  let server: RunningServer;

  before(async () => {
    opa = await startOpa();
    server = await startServer({
      INFERFLUX_GUARDRAIL_BLOCKLIST: 'classified,launch codes',
      INFERFLUX_GUARDRAIL_OPA_ENDPOINT: opa.url,
      INFERFLUX_GUARDRAIL_OPA_TIMEOUT_MS: '150',
    });
  });

  after(async () => {
    const code = await server?.stop();
    opa?.server.closeAllConnections();
    await new Promise((resolve) => opa?.server.close(resolve));
    expect(code, 'server exit code after SIGTERM').to.equal(0);
  });

  it('denies a blocklisted prompt with 400 guardrail_denied, audits it hashed, and keeps serving', async () => {
    const prompt = 'Tell me the ＣＬＡＳＳＩＦＩＥＤ plans';
    const r = await post(server.url, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 4 });
    expect(r).to.deep.equal({ status: 400, json: denied('blocklist') });

    const ok = await post(server.url, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 4 });
    expect(ok.status).to.equal(200);

    const lines = await auditLines(server, (l) => l.decision === 'guardrail:blocklist');
    const line = lines.find((l) => l.decision === 'guardrail:blocklist');
    expect(line).to.deep.include({ event: 'denial', status: 400, route: '/v1/chat/completions', model: MODEL });
    expect(line!.prompt).to.match(/^[0-9a-f]{64}$/);
    expect(readFileSync(join(server.dir, 'audit.log'), 'utf8')).to.not.include('plans');
  });

  it('asks the external engine with the OPA input document: allow, deny with reason, timeout fails closed with 503', async () => {
    opa.seen.length = 0;
    const allow = await post(server.url, '/v1/completions', { model: MODEL, prompt: 'Once upon a time', max_tokens: 3 });
    expect(allow.status).to.equal(200);
    expect(opa.seen.map((s) => s.input)).to.deep.equal([
      { prompt: 'Once upon a time', model: MODEL, tenant: opa.seen[0]!.input.tenant, key_id: opa.seen[0]!.input.key_id, route: '/v1/completions' },
    ]);

    const deny = await post(server.url, '/v1/completions', { model: MODEL, prompt: 'about opa-deny things', max_tokens: 3 });
    expect(deny).to.deep.equal({ status: 400, json: denied('opa_denied (no opa-deny talk)') });

    const t0 = Date.now();
    const slow = await post(server.url, '/v1/completions', { model: MODEL, prompt: 'opa-slow please', max_tokens: 3 });
    expect(slow).to.deep.equal({
      status: 503,
      retryAfter: '5',
      json: {
        error: {
          message: 'The external policy engine could not decide and guardrails.opa_fail_mode is closed; the request was not checked. Retry later.',
          type: 'service_unavailable',
          param: null,
          code: 'guardrail_unavailable',
        },
      },
    });
    expect(Date.now() - t0).to.be.below(900);
    const audited = (await auditLines(server, (l) => l.decision === 'guardrail:opa_unavailable')).find((l) => l.decision === 'guardrail:opa_unavailable');
    expect(audited).to.deep.include({ event: 'denial', status: 503, route: '/v1/completions', model: MODEL, detail: 'prompt: no answer within 150 ms' });

    expect(await metric(server.url, 'inferflux_guardrail_denials_total{stage="prompt",reason="opa_unavailable"}')).to.equal(1);
    expect(await metric(server.url, 'inferflux_guardrail_verdict_seconds_count{stage="prompt",engine="opa"}')).to.be.at.least(3);
  });

  it('the openai client sees a denial as an APIError with code guardrail_denied', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    try {
      await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'the launch codes' }], stream: true });
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).to.equal(400);
      expect((err as InstanceType<typeof OpenAI.APIError>).code).to.equal('guardrail_denied');
    }
  });
});

describe('output guardrails on the real server', function () {
  this.timeout(180_000);

  /**
   * The tiny model writes deterministic gibberish at temperature 0. A first server (no guardrails)
   * shows which word comes out mid-stream; a second one blocks exactly that word.
   */
  it('stops a stream mid-way with an SSE error event the openai client raises as APIError', async function () {
    const request = { model: MODEL, prompt: 'Once upon a time', max_tokens: 48, temperature: 0, ignore_eos: true };
    let word = '';
    let text = '';
    const plain = await startServer();
    try {
      const r = await post(plain.url, '/v1/completions', request);
      text = (r.json as { choices: { text: string }[] }).choices[0]!.text;
      // A whole word that starts after the first few characters and is not in the prompt.
      for (const m of text.matchAll(/[\p{L}]{3,}/gu)) {
        const before = text[m.index - 1];
        const after = text[m.index + m[0].length];
        const isWord = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}\p{M}_]/u.test(c);
        if (m.index >= 8 && !isWord(before) && !isWord(after) && !request.prompt.toLowerCase().includes(m[0].toLowerCase())) {
          word = m[0];
          break;
        }
      }
    } finally {
      await plain.stop();
    }
    // The tiny model (seed 0) and greedy decoding are deterministic: finding no word is a failure,
    // not a reason to skip (a skipped test would hide a broken output guardrail).
    expect(word, `no standalone word in the tiny model's output: ${JSON.stringify(text)}`).to.not.equal('');

    const guarded = await startServer({ INFERFLUX_GUARDRAIL_BLOCKLIST: word });
    try {
      const client = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const stream = await client.completions.create({ ...request, stream: true } as never as OpenAI.CompletionCreateParamsStreaming);
      let seen = '';
      let error: unknown;
      try {
        for await (const chunk of stream) seen += chunk.choices[0]?.text ?? '';
      } catch (err) {
        error = err;
      }
      expect(error, `stream of ${JSON.stringify(text)} blocking ${JSON.stringify(word)}`).to.be.instanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).to.equal('guardrail_denied');
      expect((error as Error).message).to.include('blocklist');
      // What reached the client stops before the word.
      expect(text.startsWith(seen)).to.equal(true);
      expect(seen.toLowerCase()).to.not.include(word.toLowerCase());

      // Non-stream: the same output is a plain 400.
      const r = await post(guarded.url, '/v1/completions', request);
      expect(r).to.deep.equal({ status: 400, json: denied('blocklist') });
      expect(await metric(guarded.url, 'inferflux_guardrail_denials_total{stage="output",reason="blocklist"}')).to.equal(2);
      // The server keeps serving.
      const ok = await post(guarded.url, '/v1/completions', { ...request, max_tokens: 2 });
      expect(ok.status).to.equal(200);
    } finally {
      await guarded.stop();
    }
  });
});
