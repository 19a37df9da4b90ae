import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import envPaths from 'env-paths';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_CONFIG_YAML } from '../../src/config/defaults.js';
import { backendExposure, loadConfig, parseModelsEnv } from '../../src/config/load.js';
import { ENV, loadError, makeCwd } from '../helpers/config.js';


describe('config', () => {
  it('loads the built-in default with every auto resolved', () => {
    const cwd = makeCwd();
    const cfg = loadConfig({ env: ENV, cwd });
    expect(cfg).to.deep.equal({
      server: {
        host: '127.0.0.1',
        port: 8080,
        maxBodyBytes: 1048576,
        maxHeaderBytes: 16384,
        allowedHosts: ['localhost', '127.0.0.1', '[::1]'],
        idleTimeoutSeconds: 10,
        sseHeartbeatSeconds: 15,
        sseMaxBufferedBytes: 262144,
        modelsDir: path.join(envPaths('inferflux', { suffix: '' }).cache, 'models'),
        adminLoadDir: '',
        modelsStatePath: path.join(cwd, 'config/models_state.json'),
        logLevel: 'info',
        logFormat: 'auto',
      logToolCalls: false,
        logSampling: { rate: 1, tenants: {} },
        tls: { enabled: false, certPath: '', keyPath: '' },
        grpc: { enabled: false, port: 50051 },
        cors: { allowedOrigins: [], allowedHeaders: ['*'], maxAgeSeconds: 600 },
      },
      models: [{ id: 'demo', path: path.join(cwd, 'models/demo.gguf'), default: true, backend: 'cpu', generateIfMissing: true, embeddings: 'auto' }],
      runtime: { threadsPerWorker: 1, sequencesPerWorker: 4, sequencesAuto: true, contextSize: 2048, batchSize: 512, prefillChunk: 256, prefillChunkDecoding: 256, prefillSpreadTokens: 4, cores: 8, threadpool: 'auto', threadpoolPoll: 0, flashAttention: 'auto', mpsLayers: 'max', backendPriority: ['mps', 'cpu'], fairness: { enablePreemption: false, highPriorityThreshold: 5, maxTimesliceTokens: 0 }, pagedKv: { cpuPages: 512, eviction: 'lru' }, nvmeOffload: { path: '', workers: 2, queueDepth: 64 }, responseCache: { enabled: false, maxEntries: 1024, maxBytes: 67108864 }, cacheIsolation: 'shared', memoryBudgetBytes: cfg.runtime.memoryBudgetBytes, embeddings: { workers: 1, threads: 1, contextSize: 2048, batchMax: 256, maxQueue: 64 }, speculativeDecoding: { enabled: false, draftModel: '', maxPrefillTokens: 256, chunkSize: 4 } },
      scheduler: { decodePoolSize: 8, prefillPoolSize: 0, kvRingBytes: 67108864, maxQueue: 256, isolatePromptTokens: 1024, placement: 'spread', tokenizerWorkers: 1 },
      limits: { maxTokens: 4096, maxN: 8, maxStop: 4, maxConcurrentRequestsPerKey: 0 },
      audit: { path: path.join(cwd, 'logs/audit.log'), debugMode: false, flushIntervalMs: 20 },
      guardrails: {
        blocklist: [],
        pii: { action: 'off', kinds: ['email', 'phone', 'credit_card', 'iban', 'secret'], output: true },
        opaEndpoint: '',
        opaTimeoutMs: 200,
        opaFailMode: 'closed',
      },
      policy: { storePath: path.join(cwd, 'config/policy_store.conf'), watchIntervalSeconds: 5, redisUrl: '', redisKey: 'inferflux:policy' },
      auth: { enabled: 'auto', enabledSource: 'built-in default', apiKeys: [], metricsPublic: true, oidc: null },
      rateLimit: { requestsPerMinute: 0, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0 },
      rateLimitBackend: { redisUrl: '', redisPrefix: 'inferflux:rl:', redisTimeoutMs: 100, redisFailMode: 'local' },
      pull: { hubUrl: 'https://huggingface.co', allowedPrivateHosts: [], hubToken: null },
      telemetry: { otlpEndpoint: '' },
      source: 'built-in default + env (INFERFLUX_CORES)',
    });
  });

  it('models[] entries name a file or a pulled model (id defaults to the name); both or neither is an error naming the entry', () => {
    const cwd = makeCwd();
    const cfg = loadConfig({ env: { ...ENV, INFERFLUX_MODELS: 'model=acme/r-GGUF:Q8_0;id=b,model=acme/b:Q4_K_M,default=true' }, cwd });
    expect(cfg.models.map((m) => [m.id, m.path, m.pulled, m.default])).to.deep.equal([
      ['acme/r-GGUF:Q8_0', '', 'acme/r-GGUF:Q8_0', false],
      ['b', '', 'acme/b:Q4_K_M', true],
    ]);
    expect(loadError({ ...ENV, INFERFLUX_MODELS: 'model=a/b,path=/m/x.gguf' }).message).to.contain('set either path or model, not both');
    expect(loadError({ ...ENV, INFERFLUX_MODELS: 'id=x' }).message).to.contain('models[0].path: is required, or model: a pulled model name');
  });

  it('models dir, hub and pull allow-list: env over file, XDG cache by default, INFERFLUX_HUB_URL over HF_ENDPOINT', () => {
    const cwd = makeCwd();
    expect(loadConfig({ env: { ...ENV, XDG_CACHE_HOME: '/xdg' }, cwd }).server.modelsDir).to.equal(process.platform === 'linux' ? '/xdg/inferflux/models' : path.join(envPaths('inferflux', { suffix: '' }).cache, 'models'));
    const cfg = loadConfig({ env: { ...ENV, INFERFLUX_MODELS_DIR: 'pulled', HF_ENDPOINT: 'https://mirror.example/', INFERFLUX_PULL_ALLOWED_HOSTS: '127.0.0.1, 10.0.0.0/8' }, cwd });
    expect(cfg.server.modelsDir).to.equal(path.join(cwd, 'pulled'));
    expect(cfg.pull).to.deep.equal({ hubUrl: 'https://mirror.example', allowedPrivateHosts: ['127.0.0.1', '10.0.0.0/8'], hubToken: null });
    expect(loadConfig({ env: { ...ENV, HF_ENDPOINT: 'https://a.example', INFERFLUX_HUB_URL: 'http://127.0.0.1:9' }, cwd }).pull.hubUrl).to.equal('http://127.0.0.1:9');
    // The hub token is read from HF_TOKEN only (a secret: no file key), blank = none.
    expect(loadConfig({ env: { ...ENV, HF_TOKEN: ' hf_abc ' }, cwd }).pull.hubToken).to.equal('hf_abc');
    expect(loadConfig({ env: { ...ENV, HF_TOKEN: '  ' }, cwd }).pull.hubToken).to.equal(null);
    expect(loadError({ ...ENV, INFERFLUX_HUB_URL: 'ftp://x' }).message).to.contain('pull.hub_url: must be an http(s):// URL');
  });

  it('cores auto = os.availableParallelism()', () => {
    expect(loadConfig({ env: {}, cwd: makeCwd() }).runtime.cores).to.equal(os.availableParallelism());
  });

  it('config/server.yaml in the repo equals the embedded default', () => {
    const file = readFileSync(new URL('../../config/server.yaml', import.meta.url), 'utf8');
    expect(file).to.equal(DEFAULT_CONFIG_YAML);
    expect(parseYaml(file)).to.be.an('object');
  });

  it('a YAML file under cwd overrides the default, deep-merged', () => {
    const cwd = makeCwd('server:\n  port: 9000\nlimits:\n  max_n: 2\nauth:\n  api_keys: []\n');
    const cfg = loadConfig({ env: ENV, cwd });
    expect(cfg.server.port).to.equal(9000);
    expect(cfg.server.host).to.equal('127.0.0.1');
    expect(cfg.limits).to.deep.equal({ maxTokens: 4096, maxN: 2, maxStop: 4, maxConcurrentRequestsPerKey: 0 });
    expect(cfg.source).to.equal(`${path.join(cwd, 'config', 'server.yaml')} + env (INFERFLUX_CORES)`);
  });

  it('INFERFLUX_CONFIG names the file, and a missing one is an error', () => {
    const dir = makeCwd();
    const file = path.join(dir, 'other.yaml');
    writeFileSync(file, 'models:\n  - id: a\n    path: /m/a.gguf\n  - id: b\n    path: m/b.gguf\n    default: true\n');
    const cfg = loadConfig({ env: { ...ENV, INFERFLUX_CONFIG: file }, cwd: dir });
    expect(cfg.models).to.deep.equal([
      { id: 'a', path: '/m/a.gguf', default: false, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' },
      { id: 'b', path: path.join(dir, 'm/b.gguf'), default: true, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' },
    ]);
    expect(loadError({ INFERFLUX_CONFIG: path.join(dir, 'nope.yaml') }).key).to.equal('INFERFLUX_CONFIG');
  });

  it('legacy model.path becomes the single default model', () => {
    const cfg = loadConfig({ env: ENV, cwd: makeCwd('model:\n  path: /m/Llama-3.Q4.gguf\n') });
    expect(cfg.models).to.deep.equal([
      { id: 'Llama-3.Q4', path: '/m/Llama-3.Q4.gguf', default: true, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' },
    ]);
  });

  it('scheduler.fairness is the same knobs as runtime.fairness; one layer may not set both', () => {
    const yaml = 'scheduler:\n  max_queue: 9\n  fairness:\n    enable_preemption: true\n    max_timeslice_tokens: 32\n';
    const cfg = loadConfig({ env: ENV, cwd: makeCwd(yaml) });
    expect(cfg.runtime.fairness).to.deep.equal({ enablePreemption: true, highPriorityThreshold: 5, maxTimesliceTokens: 32 });
    expect(cfg.scheduler.maxQueue).to.equal(9);
    const both = loadError(ENV, `${yaml}runtime:\n  fairness:\n    enable_preemption: false\n`);
    expect(both.key).to.equal('scheduler.fairness');
    expect(both.message).to.include('not both');
    expect(loadError(ENV, 'scheduler:\n  fairness:\n    max_timeslice_tokens: -1\n').key).to.equal('runtime.fairness.max_timeslice_tokens');
  });

  it('server.log_sampling: an overall rate (INFERFLUX_LOG_SAMPLE_RATE) and per-tenant rates, each 0..1', () => {
    const cfg = loadConfig({ env: { ...ENV, INFERFLUX_LOG_SAMPLE_RATE: '0.25' }, cwd: makeCwd('server:\n  log_sampling:\n    rate: 1\n    tenants:\n      team-a: 0\n') });
    expect(cfg.server.logSampling).to.deep.equal({ rate: 0.25, tenants: { 'team-a': 0 } });
    expect(loadError({ ...ENV, INFERFLUX_LOG_SAMPLE_RATE: '2' }).key).to.equal('server.log_sampling.rate');
    expect(loadError({ ...ENV, INFERFLUX_LOG_SAMPLE_RATE: 'half' }).message).to.include('must be number (got "half" from INFERFLUX_LOG_SAMPLE_RATE)');
    expect(loadError(ENV, 'server:\n  log_sampling:\n    rate: 1\n    tenants:\n      team-a: -1\n').key).to.match(/^server\.log_sampling\.tenants/);
  });

  it('applies each scalar env override', () => {
    const cwd = makeCwd();
    const cfg = loadConfig({
      cwd,
      env: {
        INFERFLUX_HOST: '0.0.0.0',
        INFERFLUX_PORT: '0',
        INFERFLUX_MAX_BODY_BYTES: '2048',
        INFERFLUX_MAX_HEADER_BYTES: '4096',
        INFERFLUX_AUDIT_LOG: 'var/a.log',
        INFERFLUX_AUDIT_DEBUG: 'true',
        INFERFLUX_AUDIT_FLUSH_INTERVAL_MS: '150',
        INFERFLUX_CORES: '6',
        INFERFLUX_DECODE_POOL_SIZE: '3',
        INFERFLUX_PREFILL_POOL_SIZE: '0',
        INFERFLUX_THREADS_PER_WORKER: '2',
        INFERFLUX_SEQUENCES_PER_WORKER: '16',
        INFERFLUX_CONTEXT_SIZE: '4096',
        INFERFLUX_POLICY_STORE: 'var/policy.conf',
        INFERFLUX_LOG_TOOL_CALLS: '1',
      },
    });
    expect(cfg.server.logToolCalls).to.equal(true);
    expect(cfg.policy).to.deep.equal({ storePath: path.join(cwd, 'var/policy.conf'), watchIntervalSeconds: 5, redisUrl: '', redisKey: 'inferflux:policy' });
    expect(cfg.server.host).to.equal('0.0.0.0');
    expect(cfg.server.port).to.equal(0);
    expect(cfg.server.maxBodyBytes).to.equal(2048);
    expect(cfg.server.maxHeaderBytes).to.equal(4096);
    expect(cfg.audit).to.deep.equal({ path: path.join(cwd, 'var/a.log'), debugMode: true, flushIntervalMs: 150 });
    expect(cfg.runtime).to.include({ cores: 6, threadsPerWorker: 2, sequencesPerWorker: 16, sequencesAuto: false, contextSize: 4096 });
    expect(cfg.scheduler).to.include({ decodePoolSize: 3, prefillPoolSize: 0 });
  });

  it('placement auto packs on 1-2 cores with room for the whole batch in one worker, spreads elsewhere', () => {
    const two = loadConfig({ env: { INFERFLUX_CORES: '2' }, cwd: makeCwd() });
    expect(two.scheduler).to.include({ decodePoolSize: 2, placement: 'pack' });
    expect(two.runtime).to.include({ threadsPerWorker: 1, sequencesPerWorker: 16, sequencesAuto: true });
    const four = loadConfig({ env: { INFERFLUX_CORES: '4' }, cwd: makeCwd() });
    expect(four.scheduler.placement).to.equal('spread');
    expect(four.runtime.sequencesPerWorker).to.equal(4);
    // Disaggregated: the prefill pool takes long prompts, so nothing gains from packing decode.
    const disagg = loadConfig({ env: { INFERFLUX_CORES: '2', INFERFLUX_PREFILL_POOL_SIZE: '1' }, cwd: makeCwd() });
    expect(disagg.scheduler.placement).to.equal('spread');
    const forced = loadConfig({ env: { INFERFLUX_CORES: '2', INFERFLUX_PLACEMENT: 'Spread', INFERFLUX_SEQUENCES_PER_WORKER: '6' }, cwd: makeCwd() });
    expect(forced.scheduler.placement).to.equal('spread');
    expect(forced.runtime).to.include({ sequencesPerWorker: 6, sequencesAuto: false });
    expect(loadError({ INFERFLUX_CORES: '2', INFERFLUX_PLACEMENT: 'dense' }).message).to.match(/scheduler\.placement.*"auto", "pack" or "spread"/);
  });

  it('runtime.threadpool: auto, persistent or per_step, and a polling level 0-100', () => {
    const set = loadConfig({ env: { ...ENV, INFERFLUX_THREADPOOL: ' Per_Step ', INFERFLUX_THREADPOOL_POLL: '50' }, cwd: makeCwd() });
    expect(set.runtime).to.include({ threadpool: 'per_step', threadpoolPoll: 50 });
    expect(loadError({ ...ENV, INFERFLUX_THREADPOOL: 'shared' }).message).to.match(/runtime\.threadpool.*"auto", "persistent" or "per_step"/);
    expect(loadError({ ...ENV, INFERFLUX_THREADPOOL_POLL: '101' }).message).to.match(/runtime\.threadpool_poll/);
  });

  it('runtime.flash_attention: auto, on or off; runtime.prefill_chunk from the environment', () => {
    expect(loadConfig({ env: ENV, cwd: makeCwd() }).runtime.flashAttention).to.equal('auto');
    expect(loadConfig({ env: { ...ENV, INFERFLUX_FLASH_ATTENTION: ' Off ' }, cwd: makeCwd() }).runtime.flashAttention).to.equal('off');
    expect(loadConfig({ env: { ...ENV, INFERFLUX_PREFILL_CHUNK: '512' }, cwd: makeCwd() }).runtime.prefillChunk).to.equal(512);
    expect(loadError({ ...ENV, INFERFLUX_FLASH_ATTENTION: 'yes' }).message).to.match(/runtime\.flash_attention.*"auto", "on" or "off"/);
  });

  it('backend mps (Metal): accepted on macOS with Apple silicon, refused elsewhere naming the entry; runtime.mps_layers', () => {
    const mac = { os: 'darwin' as const, arch: 'arm64' };
    const env = { ...ENV, INFERFLUX_MODELS: 'id=a,path=/m/a.gguf;id=b,path=/m/b.gguf,backend=mps' };
    const cfg = loadConfig({ env, cwd: makeCwd(), platform: mac });
    expect(cfg.models.map((m) => m.backend)).to.deep.equal(['cpu', 'mps']);
    expect(cfg.runtime.mpsLayers).to.equal('max');
    expect(loadConfig({ env: { ...env, INFERFLUX_MPS_LAYERS: '20' }, cwd: makeCwd(), platform: mac }).runtime.mpsLayers).to.equal(20);
    expect(() => loadConfig({ env: { ...env, INFERFLUX_MPS_LAYERS: '-1' }, cwd: makeCwd(), platform: mac })).to.throw(/runtime\.mps_layers.*"auto" or an integer/);
    for (const platform of [{ os: 'linux' as const, arch: 'x64' }, { os: 'darwin' as const, arch: 'x64' }]) {
      expect(() => loadConfig({ env, cwd: makeCwd(), platform })).to.throw(
        `models[1].backend: "mps" (Metal) needs macOS on Apple silicon; this machine is ${platform.os}/${platform.arch}: use backend "cpu"`,
      );
    }
    expect(() => loadConfig({ env: { ...ENV, INFERFLUX_MODELS: 'id=a,path=/m/a.gguf,backend=cuda' }, cwd: makeCwd() })).to.throw(/must be "cpu", "mps" .* or "auto"/);
  });

  it('backend auto: the first of runtime.backend_priority the machine has, and the ones passed over', () => {
    const mac = { os: 'darwin' as const, arch: 'arm64' };
    const linux = { os: 'linux' as const, arch: 'x64' };
    const env = { ...ENV, INFERFLUX_MODELS: 'id=a,path=/m/a.gguf,backend=auto;id=b,path=/m/b.gguf' };
    const pick = (platform: typeof mac | typeof linux, extra: Record<string, string> = {}) =>
      loadConfig({ env: { ...env, ...extra }, cwd: makeCwd(), platform }).models.map((m) => [m.backend, m.backendAuto ?? null]);
    expect(pick(mac)).to.deep.equal([['mps', { skipped: [] }], ['cpu', null]]);
    expect(pick(linux)).to.deep.equal([['cpu', { skipped: ['mps'] }], ['cpu', null]]);
    expect(pick(mac, { INFERFLUX_BACKEND_PRIORITY: 'CPU, mps' })).to.deep.equal([['cpu', { skipped: [] }], ['cpu', null]]);
    // Only mps listed, on Linux: nothing listed is here, so the CPU (every machine has it).
    expect(pick(linux, { INFERFLUX_BACKEND_PRIORITY: 'mps' })).to.deep.equal([['cpu', { skipped: ['mps'] }], ['cpu', null]]);
    const cfg = loadConfig({ env, cwd: makeCwd(), platform: linux });
    expect(cfg.runtime.backendPriority).to.deep.equal(['mps', 'cpu']);
    expect(backendExposure(cfg, 'a')).to.deep.equal({ requested: 'auto', exposed: 'cpu', provenance: 'priority', skipped: ['mps'] });
    expect(backendExposure(cfg, 'b')).to.deep.equal({ requested: 'cpu', exposed: 'cpu', provenance: 'config', skipped: [] });
    expect(backendExposure(cfg, 'loaded-later')).to.deep.equal({ requested: 'cpu', exposed: 'cpu', provenance: 'runtime', skipped: [] });
    for (const bad of ['cuda', 'cpu,cpu', ',']) {
      expect(loadError({ ...env, INFERFLUX_BACKEND_PRIORITY: bad }).key, bad).to.match(/^runtime\.backend_priority/);
    }
  });

  it('counts prefill workers in the thread budget (disaggregated mode)', () => {
    const cfg = loadConfig({ env: { ...ENV, INFERFLUX_CORES: '2', INFERFLUX_PREFILL_POOL_SIZE: '1' }, cwd: makeCwd() });
    expect(cfg.scheduler).to.include({ prefillPoolSize: 1, decodePoolSize: 1 });
    expect(cfg.runtime.threadsPerWorker).to.equal(1);
    expect(() =>
      loadConfig({ env: { ...ENV, INFERFLUX_CORES: '2', INFERFLUX_PREFILL_POOL_SIZE: '1', INFERFLUX_DECODE_POOL_SIZE: '2' }, cwd: makeCwd() }),
    ).to.throw(/^runtime\.threads_per_worker: .*\(2 decode \+ 1 prefill\)/);
  });

  it('INFERFLUX_MODEL_PATH replaces the model list with one default entry', () => {
    const cfg = loadConfig({ env: { ...ENV, INFERFLUX_MODEL_PATH: '/models/tiny.gguf' }, cwd: makeCwd() });
    expect(cfg.models).to.deep.equal([
      { id: 'tiny', path: '/models/tiny.gguf', default: true, backend: 'cpu', generateIfMissing: false, embeddings: 'auto' },
    ]);
  });

  it('parses INFERFLUX_MODELS', () => {
    expect(parseModelsEnv('id=llama3,path=/m/a.gguf,backend=cpu,default=true; path=/m/qwen.gguf ;')).to.deep.equal([
      { id: 'llama3', path: '/m/a.gguf', backend: 'cpu', default: true },
      { id: 'qwen', path: '/m/qwen.gguf' },
    ]);
    const cfg = loadConfig({ env: { INFERFLUX_CORES: '8', INFERFLUX_MODELS: 'id=a,path=/m/a.gguf;id=b,path=/m/b.gguf,default=true' }, cwd: makeCwd() });
    expect(cfg.models.map((m) => [m.id, m.default])).to.deep.equal([['a', false], ['b', true]]);
    // Two models share 8 cores: 4 decode workers each, 1 thread each.
    expect(cfg.scheduler.decodePoolSize).to.equal(4);
    expect(cfg.runtime.threadsPerWorker).to.equal(1);
    expect(loadError({ INFERFLUX_MODELS: 'id=a,path=/a.gguf,colour=red' }).message).to.match(/^models\[0\]: unknown field "colour"/);
    expect(loadError({ INFERFLUX_MODELS: 'id=a' }).key).to.equal('models[0].path');
  });

  it('runtime.embeddings.* from YAML and INFERFLUX_EMBEDDINGS_*; models[].embeddings from YAML and INFERFLUX_MODELS', () => {
    const yaml = 'runtime:\n  context_size: 1024\n  embeddings:\n    batch_max: 8\nmodels:\n  - id: e\n    path: e.gguf\n    embeddings: true\n';
    const cfg = loadConfig({ env: { INFERFLUX_CORES: '2', INFERFLUX_EMBEDDINGS_WORKERS: '2', INFERFLUX_EMBEDDINGS_MAX_QUEUE: '3' }, cwd: makeCwd(yaml) });
    // context_size auto follows runtime.context_size.
    expect(cfg.runtime.embeddings).to.deep.equal({ workers: 2, threads: 1, contextSize: 1024, batchMax: 8, maxQueue: 3 });
    expect(cfg.models[0]!.embeddings).to.equal(true);
    const env = loadConfig({
      env: { INFERFLUX_CORES: '2', INFERFLUX_EMBEDDINGS_THREADS: '2', INFERFLUX_EMBEDDINGS_CONTEXT_SIZE: '512', INFERFLUX_EMBEDDINGS_BATCH_MAX: '4', INFERFLUX_MODELS: 'id=a,path=/m/a.gguf,embeddings=false;id=b,path=/m/b.gguf,embeddings=auto;id=c,path=/m/c.gguf' },
      cwd: makeCwd(),
    });
    expect(env.runtime.embeddings).to.include({ threads: 2, contextSize: 512, batchMax: 4 });
    expect(env.models.map((m) => m.embeddings)).to.deep.equal([false, 'auto', 'auto']);
    expect(loadError({ INFERFLUX_EMBEDDINGS_WORKERS: '0' }).message).to.equal('runtime.embeddings.workers: must be an integer 1..64 (got 0 from INFERFLUX_EMBEDDINGS_WORKERS)');
    expect(loadError({ INFERFLUX_MODELS: 'id=a,path=/a.gguf,embeddings=maybe' }).message).to.match(/^models\[0\]\.embeddings: must be "auto", true or false/);
  });

  it('bad values name the key, the value and its source', () => {
    expect(loadError({ INFERFLUX_PORT: 'abc' }).message).to.equal(
      'server.port: must be an integer 0..65535 (got "abc" from INFERFLUX_PORT)',
    );
    expect(loadError({ INFERFLUX_AUDIT_DEBUG: 'maybe' }).message).to.equal(
      'audit.debug_mode: must be true or false (got "maybe" from INFERFLUX_AUDIT_DEBUG)',
    );
    const cwd = makeCwd('runtime:\n  context_size: 0\n');
    try {
      loadConfig({ env: ENV, cwd });
      expect.fail('should throw');
    } catch (err) {
      expect((err as Error).message).to.equal(
        `runtime.context_size: must be an integer 64..1048576 (got 0 from ${path.join(cwd, 'config', 'server.yaml')})`,
      );
    }
    expect(loadError(ENV, 'models:\n  - id: "bad id"\n    path: x.gguf\n').key).to.equal('models[0].id');
    expect(loadError(ENV, 'models:\n  - id: a\n    path: x.gguf\n    backend: cuda\n').key).to.equal('models[0].backend');
  });

  it('rejects unknown keys but accepts sections owned by later work', () => {
    expect(loadError(ENV, 'server:\n  prot: 1\n').message).to.match(/^server\.prot: unknown key/);
    expect(loadError(ENV, 'telemetry:\n  otlp: x\n').message).to.match(/^telemetry\.otlp: unknown key/);
    expect(loadError(ENV, 'models:\n  - id: a\n    path: a.gguf\n    lora: x\n').key).to.equal('models[0].lora');
    const cfg = loadConfig({ env: ENV, cwd: makeCwd('auth: {api_keys: []}\nguardrails: {}\nrate_limit: {}\npolicy: {}\n') });
    expect(cfg.server.port).to.equal(8080);
  });

  it('reads where the rate-limit buckets live (YAML, INFERFLUX_RATE_LIMIT_REDIS_*) and names a bad value', () => {
    const yaml = 'rate_limit:\n  redis_url: redis://:pw@10.0.0.5:6379/2\n  redis_prefix: "{ifx}:rl:"\n  redis_timeout_ms: 50\n  redis_fail_mode: closed\n';
    expect(loadConfig({ env: ENV, cwd: makeCwd(yaml) }).rateLimitBackend).to.deep.equal({
      redisUrl: 'redis://:pw@10.0.0.5:6379/2',
      redisPrefix: '{ifx}:rl:',
      redisTimeoutMs: 50,
      redisFailMode: 'closed',
    });
    const env = { ...ENV, INFERFLUX_RATE_LIMIT_REDIS_URL: ' rediss://cache.internal:6380 ', INFERFLUX_RATE_LIMIT_REDIS_FAIL_MODE: 'OPEN' };
    expect(loadConfig({ env, cwd: makeCwd() }).rateLimitBackend).to.include({ redisUrl: 'rediss://cache.internal:6380', redisFailMode: 'open' });
    expect(loadError({ ...ENV, INFERFLUX_RATE_LIMIT_REDIS_URL: 'http://cache:6379' }).message).to.match(/^rate_limit\.redis_url: must be "" .* or a redis:\/\/ or rediss:\/\/ URL/);
    expect(loadError({ ...ENV, INFERFLUX_RATE_LIMIT_REDIS_FAIL_MODE: 'maybe' }).key).to.equal('rate_limit.redis_fail_mode');
    // A bad URL is echoed without its password.
    const withPassword = loadError({ ...ENV, INFERFLUX_RATE_LIMIT_REDIS_URL: 'http://ops:hunter2@cache:6379' }).message;
    expect(withPassword).to.contain('http://ops:***@cache:6379');
    expect(withPassword).to.not.contain('hunter2');
    expect(loadError(ENV, 'rate_limit:\n  redis_timeout_ms: 0\n').key).to.equal('rate_limit.redis_timeout_ms');
  });

  it('reads where the policy store lives (INFERFLUX_POLICY_REDIS_URL) and names a bad value', () => {
    const cfg = loadConfig({ env: { ...ENV, INFERFLUX_POLICY_REDIS_URL: 'redis://cache:6379/1' }, cwd: makeCwd('policy:\n  redis_key: "prod:policy"\n') });
    expect(cfg.policy).to.include({ redisUrl: 'redis://cache:6379/1', redisKey: 'prod:policy' });
    expect(loadError({ ...ENV, INFERFLUX_POLICY_REDIS_URL: 'cache:6379' }).key).to.equal('policy.redis_url');
  });

  it('server.allowed_hosts: auto is the loopback names on loopback and any host elsewhere; a list comes from YAML or INFERFLUX_ALLOWED_HOSTS', () => {
    const hosts = (env: Record<string, string>, yaml?: string) => loadConfig({ env: { ...ENV, ...env }, cwd: makeCwd(yaml) }).server.allowedHosts;
    expect(hosts({})).to.deep.equal(['localhost', '127.0.0.1', '[::1]']);
    for (const loopback of ['::1', '127.0.0.2', 'localhost']) expect(hosts({ INFERFLUX_HOST: loopback })).to.deep.equal(['localhost', '127.0.0.1', '[::1]']);
    for (const open of ['0.0.0.0', '::', '10.1.2.3', 'api.internal']) expect(hosts({ INFERFLUX_HOST: open })).to.deep.equal(['*']);
    expect(hosts({ INFERFLUX_ALLOWED_HOSTS: ' API.example.com, *.svc.cluster.local ,localhost:8080' })).to.deep.equal(['api.example.com', '*.svc.cluster.local', 'localhost:8080']);
    expect(hosts({ INFERFLUX_HOST: '0.0.0.0', INFERFLUX_ALLOWED_HOSTS: 'auto' })).to.deep.equal(['*']);
    expect(hosts({}, 'server:\n  allowed_hosts: ["[::1]:9000", "*"]\n')).to.deep.equal(['[::1]:9000', '*']);
    expect(loadError({ ...ENV, INFERFLUX_ALLOWED_HOSTS: 'http://evil.example' }).message).to.equal(
      'server.allowed_hosts: must be "auto" or a list of host names or IPs (optionally with :port), [IPv6], *.domain or "*" (got ["http://evil.example"] from INFERFLUX_ALLOWED_HOSTS)',
    );
  });

  it('rejects duplicate ids and several defaults', () => {
    expect(loadError({ INFERFLUX_MODELS: 'id=a,path=/a.gguf;id=a,path=/b.gguf' }).message).to.equal('models[1].id: duplicate model id "a"');
    expect(loadError({ INFERFLUX_MODELS: 'id=a,path=/a.gguf,default=1;id=b,path=/b.gguf,default=1' }).key).to.equal('models');
  });

  it('refuses an explicit thread budget above the cores', () => {
    const err = loadError({ INFERFLUX_CORES: '4', INFERFLUX_DECODE_POOL_SIZE: '2', INFERFLUX_THREADS_PER_WORKER: '4' });
    expect(err.key).to.equal('runtime.threads_per_worker');
    expect(err.message).to.contain('= 8 llama.cpp threads > 4 cores');
    // Threads alone shrink the auto pool instead of failing.
    const cfg = loadConfig({ env: { INFERFLUX_CORES: '4', INFERFLUX_THREADS_PER_WORKER: '2' }, cwd: makeCwd() });
    expect(cfg.scheduler.decodePoolSize).to.equal(2);
  });
});
