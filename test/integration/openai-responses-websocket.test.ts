/**
 * The Responses API in WebSocket mode on the real server (actors + llama.cpp on the generated tiny
 * model), driven by the `openai` client's own `ResponsesWS` (over the `ws` package): the same
 * events as the SSE stream, turns in order on one connection, a continuation with
 * `previous_response_id` giving the same answer as the whole conversation sent over HTTP,
 * `previous_response_not_found`, bad events as `error` events on a connection that stays open,
 * a running turn cancelled when its socket closes, the handshake refused without a valid key or
 * from a foreign page, and every turn audited and counted like a POST.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';
import WebSocket from 'ws';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import { metric, type RunningServer } from '../helpers/server.js';

const MODEL = 'tiny-seed0';

type ServerEvent = { type: string; [k: string]: unknown };

/** A client whose error events are collected by `nextTurn` (without a listener the SDK rejects a promise for each). */
function socketClient(client: OpenAI): ResponsesWS {
  const rws = new ResponsesWS(client);
  rws.on('error', () => undefined);
  return rws;
}

/** Collects the events of one turn: up to its final event (completed, incomplete, failed) or an error event. */
function nextTurn(rws: ResponsesWS): Promise<ServerEvent[]> {
  return new Promise((resolve, reject) => {
    const events: ServerEvent[] = [];
    const timer = setTimeout(() => reject(new Error(`turn did not end: ${JSON.stringify(events.map((e) => e.type))}`)), 30_000);
    const onEvent = (ev: ServerEvent) => {
      events.push(ev);
      if (!['response.completed', 'response.incomplete', 'response.failed', 'error'].includes(ev.type)) return;
      clearTimeout(timer);
      rws.off('event', onEvent as never);
      resolve(events);
    };
    rws.on('event', onEvent as never);
  });
}

describe('OpenAI Responses API in WebSocket mode (openai ResponsesWS)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let client: OpenAI;

  before(async () => {
    server = await protocolServer();
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS.all, maxRetries: 0 });
  });

  it('turns stream the SSE events; a continuation by previous_response_id answers as the whole conversation over HTTP', async () => {
    const turnsBefore = await metric(server.url, 'inferflux_requests_total{route="/v1/responses",model="tiny-seed0",backend="cpu",status="200"}');
    // Sent while the socket connects: the client queues it.
    const rws = socketClient(client);
    const first = nextTurn(rws);
    rws.send({ type: 'response.create', model: MODEL, instructions: 'Be brief.', input: 'Tell me a story.', max_output_tokens: 8, temperature: 0 } as never);
    const one = await first;
    expect(await metric(server.url, 'inferflux_websocket_connections{route="/v1/responses"}')).to.equal(1);
    const sse: string[] = [];
    for await (const ev of await client.responses.create({ model: MODEL, instructions: 'Be brief.', input: 'Tell me a story.', max_output_tokens: 8, temperature: 0, stream: true })) sse.push(ev.type);
    expect(one.map((e) => e.type)).to.deep.equal(sse);
    expect(one.map((e) => e.sequence_number)).to.deep.equal(one.map((_, i) => i));
    const r1 = one.at(-1)!.response as OpenAI.Responses.Response;
    const text1 = (r1.output[0] as OpenAI.Responses.ResponseOutputMessage).content.map((c) => (c as { text: string }).text).join('');

    // The next turn sends only its new item; the connection supplies the rest.
    const second = nextTurn(rws);
    rws.send({ type: 'response.create', model: MODEL, previous_response_id: r1.id, input: [{ role: 'user', content: 'Again.' }], max_output_tokens: 8, temperature: 0 } as never);
    const two = await second;
    const r2 = two.at(-1)!.response as OpenAI.Responses.Response;
    expect(r2.previous_response_id).to.equal(r1.id);
    const whole = await client.responses.create({
      model: MODEL,
      input: [
        { role: 'user', content: 'Tell me a story.' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: text1, annotations: [] }] } as never,
        { role: 'user', content: 'Again.' },
      ],
      max_output_tokens: 8,
      temperature: 0,
    });
    expect(r2.usage!.input_tokens).to.equal(whole.usage!.input_tokens);
    expect(r2.output_text ?? (r2.output[0] as OpenAI.Responses.ResponseOutputMessage).content.map((c) => (c as { text: string }).text).join('')).to.equal(whole.output_text);

    // Only the most recent response is kept: the first one is gone, and so is a made-up id.
    for (const id of [r1.id, 'resp_nope']) {
      const turn = nextTurn(rws);
      rws.send({ type: 'response.create', model: MODEL, previous_response_id: id, input: 'x', max_output_tokens: 2 } as never);
      const [err] = await turn;
      expect(err).to.deep.include({ type: 'error', status: 400 });
      expect(err!.error).to.include({ code: 'previous_response_not_found', param: 'previous_response_id', type: 'invalid_request_error' });
    }
    rws.close();
    // Every turn counted like a POST (3 generated here, the SSE one and the whole-conversation one beside them).
    expect(await metric(server.url, 'inferflux_requests_total{route="/v1/responses",model="tiny-seed0",backend="cpu",status="200"}')).to.equal(turnsBefore + 4);
  });

  it('generate: false warms the prompt up: an empty completed response the next turn continues, its prefix from the cache', async () => {
    const rws = socketClient(client);
    // Unique prompts, so only a warm-up can have put them in the prefix cache.
    const story = (tag: string) => `Tell me a story about the ${tag} lighthouse keeper number ${Date.now()} and the long winter storm.`;
    const continued = async (id: string) => {
      const next = nextTurn(rws);
      rws.send({ type: 'response.create', model: MODEL, previous_response_id: id, input: [{ role: 'user', content: 'Again.' }], max_output_tokens: 6, temperature: 0 } as never);
      return (await next).at(-1)!.response as OpenAI.Responses.Response;
    };
    const warm = nextTurn(rws);
    const warmed = story('warm');
    rws.send({ type: 'response.create', model: MODEL, generate: false, input: warmed } as never);
    const w = await warm;
    expect(w.map((e) => e.type)).to.deep.equal(['response.created', 'response.in_progress', 'response.completed']);
    const r0 = w.at(-1)!.response as OpenAI.Responses.Response;
    expect(r0.output).to.deep.equal([]);
    expect(r0.usage).to.include({ output_tokens: 0 });
    expect(r0.usage!.input_tokens).to.be.greaterThan(10);
    const afterWarmup = await continued(r0.id);
    // The same continuation after a turn that generated (its answer is in the prompt, its prefix too).
    const gen = nextTurn(rws);
    rws.send({ type: 'response.create', model: MODEL, input: story('cold'), max_output_tokens: 1 } as never);
    const g = (await gen).at(-1)!.response as OpenAI.Responses.Response;
    const control = await continued(g.id);
    expect(afterWarmup.usage!.input_tokens_details.cached_tokens, 'the warmed prompt is a cached prefix').to.be.at.least(r0.usage!.input_tokens - 8);
    expect(control.usage!.input_tokens_details.cached_tokens).to.be.greaterThan(0);
    // Answered as the whole conversation would be over HTTP (the warm-up added no turn of its own).
    const whole = await client.responses.create({ model: MODEL, input: [{ role: 'user', content: warmed }, { role: 'user', content: 'Again.' }], max_output_tokens: 6, temperature: 0 });
    expect(afterWarmup.usage!.input_tokens).to.equal(whole.usage!.input_tokens);
    rws.close();
  });

  it('bad events are error events on a connection that stays open; turns queue in order', async () => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: `Bearer ${KEYS.all}` } });
    const got: ServerEvent[] = [];
    ws.on('message', (d) => got.push(JSON.parse(d.toString()) as ServerEvent));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const until = async (n: number) => {
      for (let i = 0; i < 600 && got.filter((e) => e.type === 'error' || e.type === 'response.completed' || e.type === 'response.incomplete').length < n; i++) await new Promise((r) => setTimeout(r, 50));
    };
    ws.send('not json');
    ws.send(JSON.stringify({ type: 'response.cancel' }));
    ws.send(JSON.stringify({ type: 'response.create', model: MODEL, input: 'hi', stream: false }));
    ws.send(JSON.stringify({ type: 'response.create', model: MODEL, input: 'hi', temprature: 0 }));
    // Two turns back to back: the second waits for the first, in order.
    ws.send(JSON.stringify({ type: 'response.create', model: MODEL, input: 'one', max_output_tokens: 3, metadata: { n: '1' } }));
    ws.send(JSON.stringify({ type: 'response.create', model: MODEL, input: 'two', max_output_tokens: 3, metadata: { n: '2' } }));
    await until(6);
    const errors = got.filter((e) => e.type === 'error');
    expect(errors.map((e) => (e.error as { code: string }).code)).to.deep.equal(['invalid_json', 'invalid_request', 'invalid_request', 'invalid_request']);
    expect((errors[1]!.error as { message: string }).message).to.include("'response.create'");
    expect((errors[2]!.error as { param: string }).param).to.equal('stream');
    expect((errors[3]!.error as { message: string }).message).to.include("Unrecognized request argument supplied: 'temprature'");
    const finals = got.filter((e) => e.type === 'response.completed' || e.type === 'response.incomplete');
    expect(finals.map((e) => (e.response as { metadata: { n: string } }).metadata.n)).to.deep.equal(['1', '2']);
    // Events of the two turns never interleave.
    const created = got.flatMap((e, i) => (e.type === 'response.created' ? [i] : []));
    expect(created[1]).to.be.greaterThan(got.indexOf(finals[0]!));
    // Closing the socket mid-turn cancels its generation, as a client leaving an HTTP stream does
    // (the schema forces an answer of hundreds of tokens, so the turn is still running).
    const cancelled = await metric(server.url, 'inferflux_cancelled_requests_total{model="tiny-seed0"}');
    const long = { type: 'json_schema', name: 'many', schema: { type: 'array', minItems: 400, items: { type: 'integer' } } };
    const before = got.length;
    ws.send(JSON.stringify({ type: 'response.create', model: MODEL, input: 'numbers', max_output_tokens: 1500, text: { format: long } }));
    for (let i = 0; i < 200 && !got.slice(before).some((e) => e.type === 'response.output_text.delta'); i++) await new Promise((r) => setTimeout(r, 10));
    ws.close();
    await new Promise((r) => ws.once('close', r));
    for (let i = 0; i < 100 && (await metric(server.url, 'inferflux_cancelled_requests_total{model="tiny-seed0"}')) === cancelled; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await metric(server.url, 'inferflux_cancelled_requests_total{model="tiny-seed0"}')).to.equal(cancelled + 1);
    expect(got.slice(before).map((e) => e.type)).to.not.include('response.completed');
    // Audited like POSTs: the turns' completion lines name the route.
    await new Promise((r) => setTimeout(r, 300));
    const audit = readFileSync(join(server.dir, 'audit.log'), 'utf8');
    expect(audit).to.include('"route":"/v1/responses"');
  });

  it('the handshake needs a key with the generate scope; a plain GET is not an upgrade', async () => {
    const handshake = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/responses`, { headers });
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.once('open', () => {
          resolve(101);
          ws.close();
        });
        ws.once('error', () => undefined);
      });
    expect(await handshake({})).to.equal(401);
    expect(await handshake({ authorization: 'Bearer sk-wrong-0000000000000000' })).to.equal(401);
    expect(await handshake({ authorization: `Bearer ${KEYS.read}` })).to.equal(403);
    expect(await handshake({ authorization: `Bearer ${KEYS.generate}` })).to.equal(101);
    // A browser page from another origin may not drive the model (cross-site WebSocket hijacking).
    expect(await handshake({ authorization: `Bearer ${KEYS.generate}`, origin: 'https://evil.example' })).to.equal(403);
    const plain = await fetch(`${server.url}/v1/responses`, { headers: { authorization: `Bearer ${KEYS.all}` } });
    expect(plain.status).to.equal(405);
    await plain.text();
  });
});
