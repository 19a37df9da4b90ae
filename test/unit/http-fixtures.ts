/**
 * Shared pieces for the HTTP edge unit tests: a scripted fake Gateway, a test config, a server
 * factory on port 0 and a raw-socket client (fetch normalises `..` and `%2e%2e` itself, so the
 * path tests need bytes on the wire).
 */
import net from 'node:net';
import { InferFluxError } from '../../src/errors.js';
import type {
  ChatMessage,
  EmbedInput,
  EmbedOutput,
  ModelFileInfo,
  PromptInput,
  TokenizedText,
  TokenizeText,
  Gateway,
  GenerateInput,
  GenerationHandle,
  ModelInfo,
  ReadyReport,
  TokenSink,
} from '../../src/generation/contract.js';
import type { InferFluxConfig } from '../../src/config/types.js';
import { Metrics } from '../../src/metrics.js';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';

export const CREATED = 1_700_000_000;

export function testConfig(server: Partial<InferFluxConfig['server']> = {}): InferFluxConfig {
  return {
    server: {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 64 * 1024,
      maxHeaderBytes: 16384,
      allowedHosts: ['localhost', '127.0.0.1', '[::1]'],
      idleTimeoutSeconds: 10,
      sseHeartbeatSeconds: 15,
      sseMaxBufferedBytes: 256 * 1024,
      modelsDir: '/nonexistent/inferflux-test-models',
      adminLoadDir: '',
      modelsStatePath: '',
      logLevel: 'silent',
      logFormat: 'json',
      logToolCalls: false,
      logSampling: { rate: 1, tenants: {} },
      tls: { enabled: false, certPath: '', keyPath: '' },
      grpc: { enabled: false, port: 50051 },
      cors: { allowedOrigins: [], allowedHeaders: ['*'], maxAgeSeconds: 600 },
      ...server,
    },
    models: [{ id: 'tiny', path: '/m/tiny.gguf', default: true, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' }],
    runtime: {
      threadsPerWorker: 1,
      sequencesPerWorker: 4,
      sequencesAuto: false,
      contextSize: 2048,
      batchSize: 512,
      prefillChunk: 256,
      prefillChunkDecoding: 256, prefillSpreadTokens: 32,
      cores: 1,
      threadpool: 'per_step',
      threadpoolPoll: 0,
      flashAttention: 'auto',
      mpsLayers: 'max',
      backendPriority: ['mps', 'cpu'],
      cacheIsolation: 'shared',
      fairness: { enablePreemption: false, highPriorityThreshold: 5, maxTimesliceTokens: 0 },
      pagedKv: { cpuPages: 0, eviction: 'lru' },
      nvmeOffload: { path: '', workers: 1, queueDepth: 1 },
      responseCache: { enabled: false, maxEntries: 1, maxBytes: 1024 },
      memoryBudgetBytes: 1024 * 1024 * 1024,
      embeddings: { workers: 1, threads: 1, contextSize: 2048, batchMax: 256, maxQueue: 16 },
      speculativeDecoding: { enabled: false, draftModel: '', maxPrefillTokens: 256, chunkSize: 4 },
    },
    scheduler: { decodePoolSize: 1, prefillPoolSize: 0, kvRingBytes: 1048576, maxQueue: 16, isolatePromptTokens: 0, placement: 'spread', tokenizerWorkers: 1 },
    limits: { maxTokens: 4096, maxN: 8, maxStop: 4, maxConcurrentRequestsPerKey: 0 },
    audit: { path: '/tmp/audit.log', debugMode: false, flushIntervalMs: 20 },
    guardrails: { blocklist: [], pii: { action: 'off', kinds: [] }, opaEndpoint: '', opaTimeoutMs: 200, opaFailMode: 'closed' },
    policy: { storePath: '/tmp/policy_store.conf', watchIntervalSeconds: 5, redisUrl: '', redisKey: 'inferflux:policy' },
    auth: { enabled: 'auto', enabledSource: 'test', apiKeys: [], metricsPublic: true, oidc: null },
    rateLimit: { requestsPerMinute: 0, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0 },
    rateLimitBackend: { redisUrl: '', redisPrefix: 'inferflux:rl:', redisTimeoutMs: 100, redisFailMode: 'local' },
    pull: { hubUrl: 'https://huggingface.co', allowedPrivateHosts: [], hubToken: null },
    telemetry: { otlpEndpoint: '' },
    source: 'test',
  };
}

export type Script = (input: GenerateInput, sink: TokenSink, handle: FakeHandle) => void;

export class FakeHandle implements GenerationHandle {
  cancelled = false;
  paused = false;
  pauses = 0;
  resumes = 0;
  private waiters: (() => void)[] = [];
  cancel(): void {
    this.cancelled = true;
    this.wake();
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
    this.wake();
  }
  resume(): void {
    this.paused = false;
    this.resumes++;
    this.wake();
  }
  /** Resolves at the next cancel/pause/resume. */
  changed(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Emits `pieces` for every choice on later ticks, then ends with 'stop'. */
export function emitText(pieces: string[], reason: 'stop' | 'length' = 'stop'): Script {
  return (input, sink, handle) => {
    const steps: (() => void)[] = [() => sink.onStart({ model: input.model ?? 'tiny', promptTokens: 5, created: CREATED })];
    for (let c = 0; c < input.n; c++) {
      for (const p of pieces) steps.push(() => sink.onText(c, p));
      steps.push(() => sink.onChoiceEnd(c, reason, pieces.length));
    }
    steps.push(() => sink.onEnd({ promptTokens: 5, completionTokens: pieces.length * input.n, cachedTokens: 0 }));
    const next = () => {
      if (handle.cancelled) return;
      const step = steps.shift();
      if (!step) return;
      step();
      setImmediate(next);
    };
    setImmediate(next);
  };
}

export class FakeGateway implements Gateway {
  script: Script = emitText(['Hello', ' world']);
  ready = true;
  inputs: GenerateInput[] = [];
  handles: FakeHandle[] = [];

  generate(input: GenerateInput, sink: TokenSink): GenerationHandle {
    this.inputs.push(input);
    const handle = new FakeHandle();
    this.handles.push(handle);
    this.script(input, sink, handle);
    return handle;
  }

  embedInputs: EmbedInput[] = [];

  /** Fake embeddings: one token per UTF-16 code unit (token ids: one per id), a vector [length, 1] normalised. */
  async embed(input: EmbedInput): Promise<EmbedOutput> {
    const m = this.model(input.model);
    this.embedInputs.push(input);
    const lengths = input.inputs.map((i) => ('text' in i ? i.text.length : i.tokens.length));
    const vectors = lengths.map((n) => Float32Array.from([n / Math.hypot(n, 1), 1 / Math.hypot(n, 1)]));
    return { model: m.id, vectors, promptTokens: lengths.reduce((a, b) => a + b, 0), loadMs: 0, evalMs: 1, totalMs: 1 };
  }

  models(): ModelInfo[] {
    return [
      {
        id: 'tiny',
        path: '/m/tiny.gguf',
        pulled: null,
        created: CREATED,
        ownedBy: 'inferflux',
        isDefault: true,
        contextSize: 2048,
        architecture: 'llama',
        trainContextSize: 4096,
        parameterCount: 1000,
        vocabSize: 256,
        ready: this.ready,
        state: this.ready ? 'ready' : 'loading',
        capabilities: { chat: true, completion: true, embeddings: false, tools: true, vision: false },
        sha256: null,
        source: 'config',
        error: null,
        metadata: {
          architecture: 'llama', parameterCount: 1000, quantization: 'F32', contextLength: 4096, isMoe: false, nExperts: 0, nActiveExperts: 0,
          chatTemplate: '', poolingType: null, layers: 2, embeddingLength: 64, headCount: 4, headCountKv: 2, keyLength: 16, valueLength: 16,
        },
        memoryBytes: 0,
        backendExposure: { requested: 'cpu', exposed: 'cpu', provenance: 'config', skipped: [] },
      },
    ];
  }

  model(id: string | undefined): ModelInfo {
    const m = this.models().find((x) => id === undefined || x.id === id);
    if (!m) throw new InferFluxError('model_not_found', `The model '${id}' does not exist.`, { param: 'model' });
    return m;
  }

  /** Fake tokenizer: one token per UTF-16 code unit (its code), prompts as their JSON text. */
  async countTokens(model: string | undefined, prompt: PromptInput): Promise<number> {
    this.model(model);
    return prompt.kind === 'tokens' ? prompt.tokens.length : JSON.stringify(prompt).length;
  }

  async tokenize(model: string | undefined, req: TokenizeText): Promise<TokenizedText> {
    this.model(model);
    const tokens = [...req.text].map((c) => c.charCodeAt(0));
    return req.withPieces ? { tokens, pieces: [...req.text] } : { tokens };
  }

  async detokenize(model: string | undefined, tokens: number[]): Promise<string> {
    this.model(model);
    return String.fromCharCode(...tokens);
  }

  async applyTemplate(model: string | undefined, messages: ChatMessage[]): Promise<string> {
    this.model(model);
    return messages.map((m) => `<${m.role}>${m.content}`).join('') + '<assistant>';
  }

  async modelFile(model: string | undefined): Promise<ModelFileInfo> {
    this.model(model);
    return { metadata: { 'general.architecture': 'llama' }, chatTemplate: '', size: 1, modifiedMs: 0, quantization: 'F32' };
  }

  readiness(): ReadyReport {
    return {
      ready: this.ready,
      models: [{ id: 'tiny', ready: this.ready, state: this.ready ? 'ready' : 'loading', default: true }],
      pools: [{ name: 'decode:tiny', workers: 1, ready: this.ready ? 1 : 0, restarts: 0 }],
    };
  }
}

export interface TestServer {
  gateway: FakeGateway;
  metrics: Metrics;
  server: HttpServer;
  port: number;
  base: string;
}

export async function startServer(server: Partial<InferFluxConfig['server']> = {}): Promise<TestServer> {
  const gateway = new FakeGateway();
  const metrics = new Metrics({ defaultMetrics: false });
  const srv = createHttpServer({ config: testConfig(server), gateway, metrics });
  const port = await srv.listen();
  return { gateway, metrics, server: srv, port, base: `http://127.0.0.1:${port}` };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends raw bytes (with `connection: close`) and parses the one response that comes back. The
 * socket is not half-closed: uWS treats a client FIN as the client leaving.
 */
export function rawRequest(port: number, head: string, body = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(head + body));
    const chunks: Buffer[] = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [headText = '', ...rest] = text.split('\r\n\r\n');
      const lines = headText.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(lines[0]!.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
  });
}

export function get(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`;
}

/** Parses an SSE body into its `data:` payloads (JSON-decoded except `[DONE]`). */
export function sseEvents(body: string): unknown[] {
  return body
    .split('\n\n')
    .map((block) => block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'))
    .filter((d) => d !== '')
    .map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}

/** `Response.json()` is typed `unknown`; tests inspect bodies freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function json(r: Response): Promise<any> {
  return r.json();
}
