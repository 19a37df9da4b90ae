/**
 * Structured logs and OpenTelemetry traces of a real server (tiny model) with a loopback OTLP/HTTP
 * collector started by the test: JSON log lines with one access line per request (ids and counts,
 * never the key or the prompt), and spans exported per request — a root span parented by the
 * caller's traceparent, with policy, generation, queue wait, prefill and decode children carrying
 * the GenAI attributes — whose trace id also reaches the access line and the audit line. In
 * disaggregated mode the hand-off between the prefill and decode workers is a span of its own.
 */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { startServer, type RunningServer } from '../helpers/server.js';

const KEY = 'sk-obs-test-planted-secret-0001';
const PROMPT_SECRET = 'PLANTED-PROMPT-7f3a9c-do-not-log';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** Nanoseconds since the epoch, as a decimal string (OTLP/JSON's int64). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: number | string } }[];
}

function attr(s: OtlpSpan, key: string): string | number | undefined {
  const v = s.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  return v.intValue !== undefined ? Number(v.intValue) : v.stringValue;
}

/** The span of that name among `spans` (fails the test, listing the names there, when none is). */
function spanNamed(spans: OtlpSpan[], name: string): OtlpSpan {
  const found = spans.find((x) => x.name === name);
  expect(found, `span ${name} in ${spans.map((x) => x.name).join(', ')}`).to.not.equal(undefined);
  return found!;
}

/** A loopback OTLP/HTTP JSON collector that appends every exported span (and each request's method, path and content type). */
async function startCollector(spans: OtlpSpan[], contentTypes: string[] = []): Promise<{ collector: Server; port: number }> {
  const collector = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      contentTypes.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      const doc = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
      for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  return { collector, port: (collector.address() as { port: number }).port };
}

describe('observability: structured logs and OTLP traces', function () {
  this.timeout(120_000);
  let collector: Server;
  let server: RunningServer;
  const spans: OtlpSpan[] = [];
  const contentTypes: string[] = [];

  before(async () => {
    let port: number;
    ({ collector, port } = await startCollector(spans, contentTypes));
    server = await startServer({
      INFERFLUX_API_KEYS: `${KEY}:generate|read@team-obs`,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      INFERFLUX_LOG_FORMAT: 'json',
    });
  });

  after(async () => {
    await server?.stop({ keepDir: false });
    collector?.close();
  });

  it('logs JSON lines with an access line per request, traces the request, never logs the key or prompt', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, 'x-request-id': 'obs-req-1' },
      body: JSON.stringify({ model: 'tiny-seed0', messages: [{ role: 'user', content: `remember ${PROMPT_SECRET}` }], max_tokens: 4, stream: true }),
    });
    expect(res.status).to.equal(200);
    await res.text();
    const denied = await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer sk-obs-wrong-key-9999' } });
    expect(denied.status).to.equal(401);
    // The response names our root span as the parent of what follows, in the caller's trace.
    const tp = res.headers.get('traceparent')!;
    expect(tp).to.match(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    const rootId = tp.slice(36, 52);

    // Audit line, then stop: shutdown flushes the span batch and the audit writer.
    const code = await server.stop({ keepDir: true });
    expect(code).to.equal(0);
    const logs = server.logs();
    const audit = readFileSync(join(server.dir, 'audit.log'), 'utf8');

    // Every line on stdout is JSON with a level and time.
    const lines = logs.split('\n').filter((l) => l.trim() !== '');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const p of parsed) expect(p).to.include.keys('level', 'time', 'msg');
    const access = parsed.find((p) => p.msg === 'request' && p.req_id === 'obs-req-1');
    expect(access, logs).to.not.equal(undefined);
    expect(access).to.include({ component: 'http', level: 'info', method: 'POST', route: '/v1/chat/completions', status: 200, trace_id: TRACE_ID, model: 'tiny-seed0', key_id: access!.key_id, tenant: 'team-obs', tokens_out: 4 });
    expect(access!.key_id).to.match(/^key:[0-9a-f]{12}$/);
    expect(access!.tokens_in).to.be.a('number').above(0);
    expect(access!.duration_ms).to.be.a('number').above(0);
    const refused = parsed.find((p) => p.msg === 'request' && p.route === '/v1/models' && p.status === 401);
    expect(refused, 'the 401 has an access line too').to.not.equal(undefined);
    expect(parsed.some((p) => p.component === 'server' && typeof p.msg === 'string' && p.msg.startsWith('listening on'))).to.equal(true);
    // Engine workers log through the same logger (their thread id on the line): model load size and time.
    const loaded = parsed.find((p) => p.component === 'engine' && p.model === 'tiny-seed0' && typeof p.msg === 'string' && p.msg.includes('loaded'));
    expect(loaded, logs).to.not.equal(undefined);
    expect(loaded!.thread).to.be.a('number').above(0);
    expect(loaded!.file_bytes).to.be.a('number').above(1000);
    expect(loaded!.load_ms).to.be.a('number');
    for (const secret of [KEY, PROMPT_SECRET, 'sk-obs-wrong-key-9999']) {
      expect(logs, `log output contains ${secret}`).to.not.contain(secret);
    }
    expect(audit).to.contain(TRACE_ID);

    // Spans: exported as OTLP/HTTP JSON to /v1/traces.
    expect(contentTypes[0]).to.match(/^POST \/v1\/traces application\/json/);
    const mine = spans.filter((s) => s.traceId === TRACE_ID);
    const byName = (n: string): OtlpSpan => spanNamed(mine, n);
    const root = byName('POST /v1/chat/completions');
    expect(root.spanId).to.equal(rootId);
    expect(root.parentSpanId).to.equal(PARENT_ID);
    expect(attr(root, 'http.response.status_code')).to.equal(200);
    expect(attr(root, 'inferflux.request_id')).to.equal('obs-req-1');
    const policy = byName('inferflux.policy');
    const gen = byName('inferflux.generation');
    expect(policy.parentSpanId).to.equal(root.spanId);
    expect(gen.parentSpanId).to.equal(root.spanId);
    expect(attr(gen, 'gen_ai.request.model')).to.equal('tiny-seed0');
    expect(attr(gen, 'gen_ai.operation.name')).to.equal('chat');
    expect(attr(gen, 'gen_ai.usage.input_tokens')).to.equal(access!.tokens_in);
    expect(attr(gen, 'gen_ai.usage.output_tokens')).to.equal(4);
    for (const n of ['inferflux.tokenize', 'inferflux.queue_wait', 'inferflux.prefill', 'inferflux.decode']) expect(byName(n).parentSpanId).to.equal(gen.spanId);
    // Tokenizing opens the generation and ends before the engine's queue wait starts.
    const tokenize = byName('inferflux.tokenize');
    // (The SDK converts each span's performance.now() times with an offset taken when the span
    // starts, so equal times on two spans may differ by up to a millisecond.)
    const apart = BigInt(tokenize.startTimeUnixNano) - BigInt(gen.startTimeUnixNano);
    expect(apart < 1_000_000n && apart > -1_000_000n, `tokenize starts ${apart} ns from the generation`).to.equal(true);
    expect(BigInt(tokenize.endTimeUnixNano) > BigInt(tokenize.startTimeUnixNano)).to.equal(true);
    const queueWait = byName('inferflux.queue_wait');
    expect(BigInt(tokenize.endTimeUnixNano) - BigInt(queueWait.startTimeUnixNano) < 1_000_000n, 'tokenize ends where the queue wait starts').to.equal(true);
    // Unified mode: no hand-off, so no transfer span.
    expect(mine.map((x) => x.name)).to.not.include('inferflux.kv_transfer');
    // No key or prompt in any span either.
    expect(JSON.stringify(spans)).to.not.contain(KEY).and.not.contain(PROMPT_SECRET);
  });
});

describe('observability: the KV hand-off in a disaggregated trace', function () {
  this.timeout(120_000);

  it('a prompt prefilled on the prefill worker and decoded on the decode worker has an inferflux.kv_transfer span between them', async () => {
    const spans: OtlpSpan[] = [];
    const { collector, port } = await startCollector(spans);
    const server = await startServer({ INFERFLUX_PREFILL_POOL_SIZE: '1', INFERFLUX_DECODE_POOL_SIZE: '1', INFERFLUX_CORES: '2', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` });
    try {
      const res = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
        body: JSON.stringify({ model: 'tiny-seed0', prompt: 'handed over '.repeat(20), max_tokens: 8, temperature: 0, ignore_eos: true }),
      });
      expect(res.status).to.equal(200);
      await res.json();
    } finally {
      expect(await server.stop()).to.equal(0);
      collector.close();
    }
    const mine = spans.filter((x) => x.traceId === TRACE_ID);
    const byName = (n: string): OtlpSpan => spanNamed(mine, n);
    const gen = byName('inferflux.generation');
    const [prefill, transfer, decode] = ['inferflux.prefill', 'inferflux.kv_transfer', 'inferflux.decode'].map(byName) as [OtlpSpan, OtlpSpan, OtlpSpan];
    for (const x of [prefill, transfer, decode]) expect(x.parentSpanId).to.equal(gen.spanId);
    const ns = (v: string): bigint => BigInt(v);
    // In order, each starting (within the SDK's sub-millisecond conversion jitter) where the one before ends.
    const near = (a: string, b: string): boolean => ns(a) - ns(b) < 1_000_000n && ns(b) - ns(a) < 1_000_000n;
    expect(near(transfer.startTimeUnixNano, prefill.endTimeUnixNano), 'transfer starts where the prefill ends').to.equal(true);
    expect(near(decode.startTimeUnixNano, transfer.endTimeUnixNano), 'decode starts where the transfer ends').to.equal(true);
    expect(ns(transfer.endTimeUnixNano) > ns(transfer.startTimeUnixNano)).to.equal(true);
  });
});
