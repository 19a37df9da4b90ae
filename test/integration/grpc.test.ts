/**
 * gRPC on the real server (actors + llama.cpp on the generated tiny model), driven by
 * `@grpc/grpc-js` with the server's own .proto files: streamed chat completions that equal the
 * HTTP answer (greedy), usage with the cached prefix, a JSON Schema constraint, ListModels, the
 * health check, and the pipeline's refusals as gRPC statuses (unauthenticated, scope, unknown
 * model, bad values) with the error code in the trailers; every call counted like its HTTP twin.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { expect } from 'chai';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { metric, startServer, type RunningServer } from '../helpers/server.js';

const PROTOS = ['inferflux.proto', 'health.proto'].map((f) => fileURLToPath(new URL(`../../src/http/grpc/${f}`, import.meta.url)));
const KEY = 'sk-grpc-generate-0123456789';
const READ_KEY = 'sk-grpc-read-0123456789';
const MODEL = 'tiny-seed0';

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
interface Chunk {
  id: string;
  model: string;
  index: number;
  delta: string;
  finish_reason: string;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number; cached_tokens: number };
}

describe('gRPC: inferflux.v1.Inference and grpc.health.v1.Health (real engine, grpc-js)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  let inference: Client;
  let health: Client;

  const md = (key = KEY) => {
    const m = new grpc.Metadata();
    m.set('authorization', `Bearer ${key}`);
    return m;
  };
  const chat = (req: Record<string, unknown>, meta = md()) =>
    new Promise<{ chunks: Chunk[]; error: grpc.ServiceError | null }>((resolve) => {
      const chunks: Chunk[] = [];
      const stream = inference.ChatCompletions(req, meta) as grpc.ClientReadableStream<Chunk>;
      stream.on('data', (c: Chunk) => chunks.push(c));
      stream.on('error', (error: grpc.ServiceError) => resolve({ chunks, error }));
      stream.on('end', () => resolve({ chunks, error: null }));
    });
  const unary = (client: Client, method: string, req: unknown, meta = md()) =>
    new Promise<{ res: unknown; error: grpc.ServiceError | null }>((resolve) => client[method]!(req, meta, (error: grpc.ServiceError | null, res: unknown) => resolve({ res, error })));

  before(async () => {
    server = await startServer({ INFERFLUX_API_KEYS: `${KEY}:generate|read,${READ_KEY}:read`, INFERFLUX_GRPC_ENABLED: 'true', INFERFLUX_GRPC_PORT: '0' });
    const port = /gRPC listening on [^:]+:(\d+)/.exec(server.logs())?.[1];
    expect(port, server.logs()).to.be.a('string');
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTOS, { keepCase: true, longs: Number, enums: String, defaults: true })) as unknown as {
      inferflux: { v1: { Inference: grpc.ServiceClientConstructor } };
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    inference = new pkg.inferflux.v1.Inference(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Client;
    health = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Client;
  });

  after(async () => {
    inference?.close();
    health?.close();
    if (server) expect(await server.stop(), 'exit code after SIGTERM').to.equal(0);
  });

  it('ChatCompletions streams the HTTP answer (greedy): pieces, finish_reason, then usage', async () => {
    const messages = [{ role: 'user', content: 'Tell me a story.' }];
    const http = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages, max_tokens: 12, temperature: 0 }),
    });
    const want = ((await http.json()) as { choices: { message: { content: string }; finish_reason: string }[] }).choices[0]!;
    const before = await metric(server.url, `inferflux_requests_total{route="/v1/chat/completions",model="${MODEL}",backend="cpu",status="200"}`);
    const { chunks, error } = await chat({ model: MODEL, messages, max_tokens: 12, temperature: 0 });
    expect(error).to.equal(null);
    const text = chunks.filter((c) => !c.usage).map((c) => c.delta).join('');
    expect(text).to.equal(want.message.content);
    const pieces = chunks.filter((c) => !c.usage);
    expect(pieces.at(-1)!.finish_reason).to.equal(want.finish_reason);
    expect(pieces.slice(0, -1).every((c) => c.finish_reason === '')).to.equal(true);
    expect(chunks.at(-1)!.usage!.completion_tokens).to.equal(12);
    expect(chunks.at(-1)!.usage!.total_tokens).to.equal(chunks.at(-1)!.usage!.prompt_tokens + 12);
    // The same prompt again: its prefix comes from the cache.
    expect(chunks.at(-1)!.usage!.cached_tokens).to.be.greaterThan(0);
    expect(await metric(server.url, `inferflux_requests_total{route="/v1/chat/completions",model="${MODEL}",backend="cpu",status="200"}`)).to.equal(before + 1);
  });

  it('json_schema constrains the answer (grammar); ListModels lists the served model; health is SERVING', async () => {
    const schema = { enum: ['red', 'green', 'blue'] };
    const { chunks, error } = await chat({ messages: [{ role: 'user', content: 'A colour?' }], max_tokens: 40, temperature: 1, seed: 3, json_schema: JSON.stringify(schema) });
    expect(error).to.equal(null);
    const text = chunks.map((c) => c.delta).join('');
    expect(validateOutput(schema, text).valid, text).to.equal(true);
    const models = await unary(inference, 'ListModels', {});
    expect(models.error).to.equal(null);
    expect((models.res as { models: { id: string }[] }).models.map((m) => m.id)).to.include(MODEL);
    // No key needed for the probe; an unknown service name is NOT_FOUND.
    const ok = await unary(health, 'Check', { service: '' }, new grpc.Metadata());
    expect(ok.res).to.deep.equal({ status: 'SERVING' });
    const unknown = await unary(health, 'Check', { service: 'other.Service' }, new grpc.Metadata());
    expect(unknown.error!.code).to.equal(grpc.status.NOT_FOUND);
  });

  it("the pipeline's refusals are gRPC statuses with the HTTP message, the code in the trailers", async () => {
    const ask = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
    const cases: [Record<string, unknown>, grpc.Metadata, grpc.status, string][] = [
      [ask, new grpc.Metadata(), grpc.status.UNAUTHENTICATED, 'unauthorized'],
      [ask, md(READ_KEY), grpc.status.PERMISSION_DENIED, 'forbidden'],
      [{ ...ask, model: 'nope' }, md(), grpc.status.NOT_FOUND, 'model_not_found'],
      [{ ...ask, temperature: 5 }, md(), grpc.status.INVALID_ARGUMENT, 'invalid_request'],
      [{ ...ask, max_tokens: 100_000 }, md(), grpc.status.INVALID_ARGUMENT, 'invalid_request'],
    ];
    for (const [req, meta, code, errorCode] of cases) {
      const { chunks, error } = await chat(req, meta);
      expect(error, JSON.stringify(req)).to.not.equal(null);
      expect(error!.code, `${JSON.stringify(req)}: ${error!.details}`).to.equal(code);
      expect(error!.metadata.get('inferflux-error-code')).to.deep.equal([errorCode]);
      expect(chunks).to.have.length(0);
    }
    const bad = await chat({ ...ask, json_schema: '{not json' });
    expect(bad.error!.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(bad.error!.details).to.include('json_schema');
    const denied = await unary(inference, 'ListModels', {}, new grpc.Metadata());
    expect(denied.error!.code).to.equal(grpc.status.UNAUTHENTICATED);
    // Counted like the HTTP requests they stand for, and logged as gRPC.
    expect(await metric(server.url, 'inferflux_requests_total{route="/v1/chat/completions",model="none",backend="cpu",status="401"}')).to.be.at.least(1);
    expect(server.logs()).to.match(/"route":"\/v1\/chat\/completions","status":401[^\n]*"transport":"grpc"/);
  });
});
