/**
 * The server process (started by src/main.ts, directly or under the supervisor).
 * Start-up: config -> policy -> bind the port (readiness 503) -> models on disk -> actors ->
 * serve every route; and graceful shutdown (< 5 s) that
 * stops accepting, lets running requests finish until a deadline, then disposes every native
 * object in every worker before the process exits (exiting with live llama.cpp objects aborts).
 */
import { loadConfig } from './config/load.js';
import type { InferFluxConfig } from './config/types.js';
import { fitSequences, servingShape } from './registry/memory-estimate.js';
import { modelMetadata } from './registry/model-metadata.js';
import type { GgufInfo } from './runtime/gguf/gguf-info.js';
import { componentLog, configureLogging } from './log/logger.js';
import { redactUrlPasswords } from './redact.js';
import { startTracing, type Tracing } from './telemetry/tracing.js';
import { sizeThreadPool } from './runtime/threadpool.js';
import { startPersistentThreadpool } from './runtime/llama/threadpool/addon.js';
import { prepareModels } from './runtime/model-files.js';
import { Metrics } from './metrics.js';
import { ActorSystem } from './actors/system.js';
import { ActorGateway } from './generation/gateway.js';
import { readModelState } from './registry/model-state.js';
import { createStartingHttpServer } from './http/server.js';
import { startGrpcServer } from './http/grpc/grpc-server.js';
import { ConsoleFeed } from './http/console-feed.js';
import { GuardrailEngine } from './policy/guardrails/guardrail-engine.js';
import { policyDefaultsFrom } from './policy/store/initial-policy.js';
import { startPolicy } from './policy/store/start-policy.js';
import { KeyRegistry } from './policy/api-keys.js';
import { decideAuth } from './policy/auth-mode.js';
import { OidcVerifier } from './policy/oidc.js';
import { createPolicyLayer } from './policy/pipeline.js';
import { createRateLimiter } from './policy/rate-limiter.js';

/** Time running requests get to finish after SIGTERM before they are cut off. */
const DRAIN_MS = 3000;

const log = componentLog('server');

async function main(): Promise<void> {
  let config = loadConfig();
  configureLogging(config.server.logLevel, config.server.logFormat);
  // Keys are hashed in the config; drop the plaintext env copies so no worker thread inherits them.
  delete process.env.INFERFLUX_API_KEYS;
  delete process.env.INFERCTL_API_KEY;
  // The hub token lives in config.pull (main thread, pulls only); no worker inherits it either.
  delete process.env.HF_TOKEN;
  const engineWorkers = config.models.length * config.scheduler.decodePoolSize;
  // Embedding workers' native calls share the libuv pool too.
  const pool = sizeThreadPool(engineWorkers + config.runtime.embeddings.workers);
  log(
    `config from ${config.source}: ${config.models.length} model(s), ${config.scheduler.decodePoolSize} engine worker(s) per model x ` +
      `${config.runtime.threadsPerWorker} thread(s) x ${config.runtime.sequencesAuto ? 'up to ' : ''}${config.runtime.sequencesPerWorker} sequences, ` +
      `context ${config.runtime.contextSize}/sequence, ${config.runtime.cores} core(s), libuv pool ${pool}`,
  );
  // Before any worker loads node-llama-cpp, so its llama.cpp calls bind to the pool's.
  const llamaThreads = startPersistentThreadpool(config.runtime.threadpool, config.runtime.threadpoolPoll);
  log(llamaThreads.summary);
  const kv = config.runtime;
  log(
    `KV cache: host pool ${kv.pagedKv.cpuPages} x 256 KiB pages per engine worker (eviction ${kv.pagedKv.eviction}), ` +
      (kv.nvmeOffload.path === ''
        ? 'no disk tier'
        : `disk tier ${kv.nvmeOffload.path} (workers ${kv.nvmeOffload.workers}, queue depth ${kv.nvmeOffload.queueDepth})`),
  );
  // The policy store is read before anything starts: a tampered or undecryptable file stops start-up.
  const policy = await startPolicy({
    store: config.policy,
    passphrase: process.env.INFERFLUX_POLICY_PASSPHRASE,
    defaults: policyDefaultsFrom(config),
    log,
  });
  const auth = decideAuth(config.auth, new KeyRegistry(config.auth.apiKeys, policy.service.current.apiKeys).size, config.server.host);
  if (auth.warning) log.warn(auth.warning);
  else log(auth.summary);
  // The port is bound before any model loads: a port in use fails start-up in milliseconds, and
  // while models load (at start or after a supervised restart) /readyz says 503 instead of
  // clients meeting a closed port.
  const metrics = new Metrics();
  const llamaPools = llamaThreads.pool;
  if (llamaPools) {
    metrics.onScrape(async () => {
      const s = llamaPools.stats();
      metrics.llamaThreadpools.set(s.contexts);
      metrics.llamaThreadpoolThreads.set(s.threads);
    });
  }
  const restartReason = process.env.INFERFLUX_RESTART_REASON;
  // A restart by the supervisor re-binds the port the dead server held (see exclusivePort).
  const tracing = startTracing(config.telemetry);
  tracingStarted = tracing;
  log(tracing ? `traces: OTLP/HTTP (JSON) export to ${redactUrlPasswords(tracing.url)}` : 'traces: off (no OTLP endpoint configured)');
  // The console's recent activity: the edge records requests into it, and audit events are teed into it below.
  const feed = new ConsoleFeed();
  const http = createStartingHttpServer({ config, metrics, log, tracer: tracing?.tracer ?? null, console: feed, exclusivePort: restartReason === undefined });
  const port = await http.listen();
  bound = http;
  const scheme = config.server.tls.enabled ? 'https' : 'http';
  log(`bound ${scheme}://${config.server.host}:${port} (pid ${process.pid}); loading models (readyz 503 until ready)`);
  // Under the supervisor: it keeps this port for a restarted server (config port 0 included).
  toSupervisor({ t: 'bound', port, configuredPort: config.server.port });
  // Runtime model changes kept from the last run: a file that does not parse stops start-up here,
  // before any model loads, naming the file.
  const keptModels = await readModelState(config.server.modelsStatePath);
  const headers = await prepareModels(config.models, log, config.server.modelsDir);
  config = fitAutoSequences(config, headers);
  const system = await ActorSystem.start(config, metrics, log);
  // From here a start-up failure must dispose the workers' llama.cpp objects before exiting.
  started = system;
  // The library checks the llama.cpp it finds once the first context uses it (engines are up now).
  const poolError = llamaPools?.stats().error;
  if (poolError) log.warn(`llama.cpp threads: started per step after all (persistent pool refused: ${poolError})`);
  const gateway = await ActorGateway.create(config, system, metrics, { state: keptModels, log });
  // Not awaited: readiness does not wait for the embedding pool; a request meanwhile waits for it.
  void gateway.warmEmbeddings(log);
  // Guardrails follow the live policy: the config's at first, then every admin change.
  const guardrails = new GuardrailEngine(config.guardrails, { metrics, log });
  guardrails.follow(policy.service);
  // Decisions made on the main thread go to the audit writer and show in the console.
  const audit = feed.tee(system.audit);
  const limiter = await createRateLimiter(config.rateLimitBackend, () => policy.service.current.rateLimit, metrics, log);
  const pipeline = createPolicyLayer({
    limiter,
    maxConcurrentPerKey: config.limits.maxConcurrentRequestsPerKey,
    authEnabled: auth.enabled,
    metricsPublic: config.auth.metricsPublic,
    configKeys: config.auth.apiKeys,
    policy: policy.service,
    oidc: config.auth.oidc ? new OidcVerifier(config.auth.oidc) : null,
    audit: (event) => audit.record(event),
  });
  http.activate({ config, gateway, metrics, log, policy: policy.service, audit, guardrails, pipeline, console: feed });
  const ready = gateway.readiness();
  toSupervisor({ t: 'ready', port });
  if (restartReason) {
    // The audit trail says why a new process continues the chain.
    system.audit.record({ ts: new Date().toISOString(), event: 'lifecycle', decision: 'server.restarted', detail: restartReason });
  }
  if (process.env.INFERFLUX_FAULT_INJECTION === '1') {
    // Test hook (supervisor tests): SIGUSR2 makes engine worker 0 of the first model abort natively.
    process.on('SIGUSR2', () => void system.injectEngineAbort(config.models[0]!.id, 0).catch((err: unknown) => log(`fault injection failed: ${String(err)}`)));
  }
  // gRPC answers once the models serve: its calls go through the same edge as HTTP's.
  const { grpc: grpcConfig, host } = config.server;
  const grpc = grpcConfig.enabled ? await startGrpcServer(http, host, grpcConfig.port, config.server.tls) : null;
  if (grpc) log(`gRPC listening on ${host}:${grpc.port}${config.server.tls.enabled ? ' (TLS)' : ''}: inferflux.v1.Inference, grpc.health.v1.Health`);
  log(`listening on ${scheme}://${config.server.host}:${port} (models: ${ready.models.map((m) => `${m.id}${m.ready ? '' : ' NOT READY'}`).join(', ')})`);

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    const closing = Promise.all([http.close(), grpc?.close()]);
    await Promise.race([gateway.whenIdle(), delay(DRAIN_MS)]);
    await policy.close();
    await limiter.close();
    await system.stop();
    await closing;
    // Spans still in the batch go out before the process ends.
    await tracing?.shutdown().catch((err: unknown) => log.warn(`trace export at shutdown failed: ${String(err)}`));
    log('stopped');
    process.exitCode = 0;
    // Workers are terminated and native objects disposed; nothing should keep the loop alive,
    // but a stray keep-alive socket must not hold shutdown past its budget.
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // A supervised server must not outlive its supervisor (kill -9 of the parent included).
  if (process.send) {
    if (!process.connected) void shutdown('supervisor gone');
    process.on('disconnect', () => void shutdown('supervisor gone'));
  }
}

/**
 * `runtime.sequences_per_worker: auto`, halved until the configured models' estimated memory (the
 * registry's estimate: weights, every worker's KV cache and overhead) fits the memory budget.
 * Before any worker starts: every part of the server sees the one count. From the headers
 * `prepareModels` already read and validated.
 */
function fitAutoSequences(config: InferFluxConfig, headers: readonly GgufInfo[]): InferFluxConfig {
  const rt = config.runtime;
  if (!rt.sequencesAuto) return config;
  const models = headers.map((info) => ({ meta: modelMetadata(info), fileBytes: info.fileSize }));
  const fit = fitSequences(models, servingShape(config), rt.sequencesPerWorker, rt.memoryBudgetBytes);
  const budget = `${(rt.memoryBudgetBytes / 2 ** 30).toFixed(1)} GiB (runtime.memory_budget_bytes)`;
  if (!fit.fits) {
    log.warn(
      `sequences per worker: 1; even so the configured models' estimated memory passes the ${budget}: ` +
        'lower runtime.context_size, serve a smaller quantization, or raise the budget if the machine has the memory',
    );
  }
  else log(`sequences per worker: ${fit.sequences} (auto, up to ${rt.sequencesPerWorker}, fitted to the ${budget})`);
  return fit.sequences === rt.sequencesPerWorker ? config : { ...config, runtime: { ...rt, sequencesPerWorker: fit.sequences } };
}

/** Messages to the supervisor (src/supervisor.ts) over the IPC channel, when there is one. */
export type ToSupervisor = { t: 'bound'; port: number; configuredPort: number } | { t: 'ready'; port: number };

function toSupervisor(msg: ToSupervisor): void {
  if (process.send && process.connected) process.send(msg);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Trace export once started, flushed on a failed start too. */
let tracingStarted: Tracing | null = null;
/** The actor system once it exists, so a failed start can shut it down cleanly. */
let started: ActorSystem | null = null;
/** The bound port once it exists, closed on a failed start. */
let bound: { close(deadlineMs?: number): Promise<void> } | null = null;

export function runServer(): void {
  main().catch(async (err: unknown) => {
    log.error(`failed to start: ${err instanceof Error ? err.message : String(err)}`);
    await bound?.close(0).catch(() => undefined);
    // Exiting while workers hold llama.cpp objects aborts the process; stop them first.
    await started?.stop().catch(() => undefined);
    await tracingStarted?.shutdown().catch(() => undefined);
    process.exit(1);
  });
}
