/**
 * Prometheus metrics, on the main thread. Names follow the seeds' "Required Prometheus Metrics"
 * table; only metrics something actually measures are registered (a metric that can never move
 * would lie on a dashboard). Workers report timings in their Done frames and the gateway observes
 * them here; `/metrics` renders the registry at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** KV hand-off phases: fine below 10 ms, where the transfer target (5 ms) sits. */
const KV_HANDOFF_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Latency buckets in seconds, from sub-millisecond steps to long generations. */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class Metrics {
  readonly registry = new Registry();

  readonly requestsTotal = new Counter({
    name: 'inferflux_requests_total',
    help: 'HTTP requests by route, model, backend and status code',
    labelNames: ['route', 'model', 'backend', 'status'] as const,
    registers: [this.registry],
  });

  readonly errorsTotal = new Counter({
    name: 'inferflux_errors_total',
    help: 'Requests that ended in an error, by model and error code',
    labelNames: ['model', 'code'] as const,
    registers: [this.registry],
  });

  readonly capabilityRejections = new Counter({
    name: 'inferflux_capability_rejections_total',
    help: 'Requests refused because the model lacks a capability they need (vision, audio, file input, embeddings), by model and capability',
    labelNames: ['model', 'capability'] as const,
    registers: [this.registry],
  });

  readonly logLinesSampledOut = new Counter({
    name: 'inferflux_log_lines_sampled_out_total',
    help: 'Access-log lines of successful requests left out by server.log_sampling, by tenant (none: no tenant)',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });

  readonly backendExposures = new Counter({
    name: 'inferflux_backend_exposures_total',
    help: 'Models brought up on a backend, by model, the backend asked for (cpu, mps, auto), the one used and why (config, priority: backend auto through runtime.backend_priority, runtime: loaded through the admin API)',
    labelNames: ['model', 'requested', 'exposed', 'provenance'] as const,
    registers: [this.registry],
  });

  readonly capabilityRouteFallbacks = new Counter({
    name: 'inferflux_capability_route_fallbacks_total',
    help: 'Requests that named no model and were routed to another served model because the default lacks a capability they need, by capability, default model and the model used',
    labelNames: ['capability', 'from_model', 'to_model'] as const,
    registers: [this.registry],
  });

  readonly adapterRequests = new Counter({
    name: 'inferflux_adapter_requests_total',
    help: 'Generation requests run under a LoRA adapter (adapter hits), by base model and adapter id',
    labelNames: ['model', 'adapter'] as const,
    registers: [this.registry],
  });

  readonly moeRequests = new Counter({
    name: 'inferflux_moe_requests_total',
    help: 'Generation requests run on a mixture-of-experts model (its GGUF declares more than one expert), by model',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly promptTokensTotal = new Counter({
    name: 'inferflux_model_prompt_tokens_total',
    help: 'Prompt tokens processed, by model',
    labelNames: ['model', 'backend'] as const,
    registers: [this.registry],
  });

  readonly completionTokensTotal = new Counter({
    name: 'inferflux_model_completion_tokens_total',
    help: 'Completion tokens generated, by model',
    labelNames: ['model', 'backend'] as const,
    registers: [this.registry],
  });

  readonly streamTokensTotal = new Counter({
    name: 'inferflux_stream_tokens_total',
    help: 'Completion tokens of SSE streams that ran to their end, by model (non-streamed responses are not counted)',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly streamCacheHits = new Counter({
    name: 'inferflux_stream_cache_hits_total',
    help: 'Responses served from the exact-match response cache (runtime.response_cache) instead of the engine',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly structuredOutputs = new Counter({
    name: 'inferflux_structured_output_total',
    help: 'Constrained (response_format / schema) choices checked after generation: valid, invalid, or truncated (ended by max_tokens before the grammar)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly toolCallsParsed = new Counter({
    name: 'inferflux_tool_calls_parsed_total',
    help: 'Tool calls read from model output, by the format the model wrote (hermes, mistral, llama3)',
    labelNames: ['format'] as const,
    registers: [this.registry],
  });

  readonly grammarSamples = new Counter({
    name: 'inferflux_grammar_samples_total',
    help:
      'Grammar-constrained tokens by how they were sampled: mask (the fitting tokens masked in), free (a free pick that fit), ' +
      "redraw (a free pick after misfits were banned), fallback (llama.cpp's full-vocabulary pass after 3 misses), llama (no mask: penalties, logprobs)",
    labelNames: ['path'] as const,
    registers: [this.registry],
  });

  readonly grammarCompile = new Histogram({
    name: 'inferflux_grammar_compile_seconds',
    help: 'Compiling a request schema or checking a raw grammar to GBNF (a cache hit is near 0)',
    labelNames: ['kind'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });

  readonly cancelledTotal = new Counter({
    name: 'inferflux_cancelled_requests_total',
    help: 'Generations stopped because the client went away',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly requestLatency = new Histogram({
    name: 'inferflux_request_latency_seconds',
    help: 'End-to-end request latency',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly ttft = new Histogram({
    name: 'inferflux_ttft_seconds',
    help: 'Time from request arrival to the first generated token',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly queueWait = new Histogram({
    name: 'inferflux_queue_wait_seconds',
    help: 'Time from enqueue to the first batch that includes the request',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly batchExec = new Histogram({
    name: 'inferflux_batch_exec_seconds',
    help: 'Total time the request spent in engine batches (prefill + decode)',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly prefillDuration = new Histogram({
    name: 'inferflux_prefill_duration_seconds',
    help: 'Prefill phase duration per request',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly decodeDuration = new Histogram({
    name: 'inferflux_decode_duration_seconds',
    help: 'Decode phase duration per request',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly websocketConnections = new Gauge({
    name: 'inferflux_websocket_connections',
    help: 'Open WebSocket connections, by route (the Responses API WebSocket mode)',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  readonly queueDepth = new Gauge({
    name: 'inferflux_scheduler_queue_depth',
    help: 'Requests waiting in the scheduler queue for a free sequence',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly activeSequences = new Gauge({
    name: 'inferflux_active_sequences',
    help: 'Sequences currently running, by model and phase (prefill pool or decode/unified pool)',
    labelNames: ['model', 'phase'] as const,
    registers: [this.registry],
  });

  readonly specChunks = new Counter({
    name: 'inferflux_spec_chunks_total',
    help: 'Speculative decoding: draft chunks the target model verified',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly specChunksAccepted = new Counter({
    name: 'inferflux_spec_chunks_accepted_total',
    help: 'Speculative decoding: verified chunks in which at least one draft token was accepted',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly specTokensReused = new Counter({
    name: 'inferflux_spec_tokens_reused_total',
    help: 'Speculative decoding: draft tokens accepted and emitted (each saved a decode step)',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly prefixHits = new Counter({
    name: 'inferflux_prefix_hits_total',
    help: 'Requests whose whole prompt (all but the last token) was served from cached KV',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly prefixPartialHits = new Counter({
    name: 'inferflux_prefix_partial_hits_total',
    help: 'Requests that reused a cached prefix of their prompt and prefilled the rest',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly prefixMisses = new Counter({
    name: 'inferflux_prefix_misses_total',
    help: 'Requests that found no cached prefix',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly prefixMatchedTokens = new Counter({
    name: 'inferflux_prefix_matched_tokens_total',
    help: 'Prompt tokens served from cached KV instead of being prefilled',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly kvHostPages = new Gauge({
    name: 'inferflux_kv_host_pages',
    help: 'Host KV page pool pages, by state (used or total), over all engine workers',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  readonly kvHostEvictions = new Counter({
    name: 'inferflux_kv_host_evictions_total',
    help: 'Prefix snapshots evicted from the host page pool (spilled to disk when enabled)',
    registers: [this.registry],
  });

  readonly kvDiskBytes = new Gauge({
    name: 'inferflux_kv_disk_bytes',
    help: 'Bytes of prefix snapshots in the disk tier, over all engine workers',
    registers: [this.registry],
  });

  readonly llamaThreadpools = new Gauge({
    name: 'inferflux_llama_threadpools',
    help: 'llama.cpp contexts running on a persistent thread pool (runtime.threadpool)',
    registers: [this.registry],
  });

  readonly llamaThreadpoolThreads = new Gauge({
    name: 'inferflux_llama_threadpool_threads',
    help: 'Threads in those persistent pools together',
    registers: [this.registry],
  });

  readonly prefillQueueDepth = new Gauge({
    name: 'inferflux_prefill_queue_depth',
    help: 'Requests waiting for a prefill worker (disaggregated mode)',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly decodeQueueDepth = new Gauge({
    name: 'inferflux_decode_queue_depth',
    help: 'Requests waiting for a decode (or unified) worker sequence',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly kvTransfer = new Histogram({
    name: 'inferflux_kv_transfer_seconds',
    help: 'Disaggregated hand-off: prefill done to first token on the decode worker (KV through the ring)',
    labelNames: ['model'] as const,
    buckets: KV_HANDOFF_BUCKETS,
    registers: [this.registry],
  });

  readonly kvHydrate = new Histogram({
    name: 'inferflux_kv_hydrate_seconds',
    help: 'Disaggregated hand-off: prefill done to the state loaded on the decode worker (the KV-moving part of inferflux_kv_transfer_seconds)',
    labelNames: ['model'] as const,
    buckets: KV_HANDOFF_BUCKETS,
    registers: [this.registry],
  });

  readonly kvBlockedTickets = new Counter({
    name: 'inferflux_kv_blocked_tickets_total',
    help: 'KV hand-off frames a full decode-worker ring turned away (the prefill worker retried)',
    registers: [this.registry],
  });

  readonly kvShippedTickets = new Counter({
    name: 'inferflux_kv_tickets_total',
    help: 'KV hand-off frames written into decode-worker rings',
    registers: [this.registry],
  });

  readonly fairnessPreemptions = new Counter({
    name: 'inferflux_fairness_preemptions_total',
    help: 'Running requests suspended so a higher-priority request could run',
    registers: [this.registry],
  });

  readonly fairnessYields = new Counter({
    name: 'inferflux_fairness_yields_total',
    help: 'Running requests suspended after their timeslice while others waited',
    registers: [this.registry],
  });

  readonly schedulerMigrations = new Counter({
    name: 'inferflux_scheduler_migrations_total',
    help: 'Running requests moved to another worker so a long prompt could prefill alone (scheduler.isolate_prompt_tokens)',
    registers: [this.registry],
  });

  readonly fairnessResumes = new Counter({
    name: 'inferflux_fairness_resumes_total',
    help: 'Suspended requests resumed',
    registers: [this.registry],
  });

  readonly fairnessTokens = new Counter({
    name: 'inferflux_fairness_tokens_total',
    help: 'Generated tokens by request priority',
    labelNames: ['priority'] as const,
    registers: [this.registry],
  });

  readonly tenantTokens = new Counter({
    name: 'inferflux_tenant_tokens_total',
    help: 'Generated tokens by tenant',
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });

  readonly embeddingInputs = new Counter({
    name: 'inferflux_embedding_inputs_total',
    help: 'Inputs embedded (one per string or token array of a request), by model',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly embeddingQueueDepth = new Gauge({
    name: 'inferflux_embedding_queue_depth',
    help: 'Embedding requests waiting for a free embedding worker (runtime.embeddings.max_queue bounds it)',
    registers: [this.registry],
  });

  readonly embeddingDuration = new Histogram({
    name: 'inferflux_embedding_seconds',
    help: 'Time an embedding worker spent evaluating one request (all its inputs)',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly workerRestarts = new Counter({
    name: 'inferflux_worker_restarts_total',
    help: 'Actor worker threads restarted after exiting unexpectedly, by pool',
    labelNames: ['pool'] as const,
    registers: [this.registry],
  });

  readonly auditDropped = new Counter({
    name: 'inferflux_audit_write_errors_total',
    help: 'Audit batches that failed to write (each is retried; nonzero means a disk problem)',
    registers: [this.registry],
  });

  readonly guardrailVerdict = new Histogram({
    name: 'inferflux_guardrail_verdict_seconds',
    help: 'Guardrail verdict latency: stage prompt|output, engine local (blocklist, PII) | opa (external call)',
    labelNames: ['stage', 'engine'] as const,
    // Local checks take microseconds; the external call is bounded by guardrails.opa_timeout_ms.
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly guardrailDenials = new Counter({
    name: 'inferflux_guardrail_denials_total',
    help: 'Requests denied by guardrails, by stage (prompt|output) and reason code',
    labelNames: ['stage', 'reason'] as const,
    registers: [this.registry],
  });

  readonly guardrailRedactions = new Counter({
    name: 'inferflux_guardrail_redactions_total',
    help: 'PII spans redacted by guardrails, by stage (prompt|output) and kind',
    labelNames: ['stage', 'kind'] as const,
    registers: [this.registry],
  });

  readonly rateLimitBackend = new Histogram({
    name: 'inferflux_rate_limit_backend_seconds',
    help: 'Round trips to the shared rate limiter (Redis), by op (admit|charge) and outcome (ok|error: failed or timed out, fail mode applied)',
    labelNames: ['op', 'outcome'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    // No prefix: prom-client's names (process_cpu_user_seconds_total, process_resident_memory_bytes,
    // nodejs_eventloop_lag_seconds, ...) are the ones every Prometheus client library exports and
    // stock dashboards and alerts query; the scrape job's labels already say which service it is.
    // (A prefix is prepended as is: 'inferflux_process_' produced inferflux_process_process_*.)
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Runs before each scrape: pulls counters that live in actors (cumulative snapshots). */
  private readonly collectors: (() => Promise<void>)[] = [];

  onScrape(collect: () => Promise<void>): void {
    this.collectors.push(collect);
  }

  async render(): Promise<string> {
    // A collector that fails (actor restarting) must not break the scrape; its counters just lag.
    await Promise.all(this.collectors.map((c) => c().catch(() => undefined)));
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
