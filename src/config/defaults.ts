/**
 * The embedded default configuration: the same text as `config/server.yaml` (a unit test keeps them
 * identical), so `node dist/main.js` starts with no file on disk. Kept as YAML rather than an object
 * so the documented file and the built-in default cannot drift in meaning.
 */

/** Path of the built-in demo model; only an entry with this raw path may be generated at start. */
export const DEMO_MODEL_PATH = 'models/demo.gguf';

/** Top-level sections owned by later work; accepted, ignored. None left: every section is read. */
export const RESERVED_SECTIONS: readonly string[] = [];

export const DEFAULT_CONFIG_YAML = `# InferFlux server configuration: the documented default.
#
# The same text is embedded in src/config/defaults.ts, so the server starts without this file; a
# unit test keeps the two identical. Load order: embedded default, then this file (or the file named
# by INFERFLUX_CONFIG), then INFERFLUX_* environment overrides. A bad value stops the server at
# start with the key's path. \`auto\` values are sized from the machine.

server:
  # Interface to bind. 0.0.0.0 exposes the server to the network. Env: INFERFLUX_HOST.
  host: 127.0.0.1
  # TCP port; 0 picks a free one (tests). Env: INFERFLUX_PORT.
  port: 8080
  # Largest request body in bytes; larger bodies get 413 request_too_large. Env: INFERFLUX_MAX_BODY_BYTES.
  max_body_bytes: 1048576
  # Largest request head (request line plus headers, in bytes) answered; a larger one gets 431
  # headers_too_large. Up to 65536. Whatever this says, uWebSockets.js itself resets the connection
  # of a head over ~128 KiB and never answers a request with more than 48 header lines.
  # Env: INFERFLUX_MAX_HEADER_BYTES.
  max_header_bytes: 16384
  # Host header values the server answers (DNS-rebinding protection); any other Host gets 421
  # host_not_allowed before authentication. Entries: a name or IP (any port), name:port, [::1],
  # *.example.com (its subdomains) or "*" (any host). auto = localhost, 127.0.0.1 and [::1] when
  # host is a loopback address, else "*". A reverse proxy that forwards the client's Host needs
  # that name listed. Env: INFERFLUX_ALLOWED_HOSTS (comma list, or auto).
  allowed_hosts: auto
  # Seconds an idle keep-alive connection stays open. uWebSockets.js 20.30 compiles this in
  # (HTTP_IDLE_TIMEOUT_S = 10, checked on a 4 s timer: measured 8.6-11.9 s) and offers no setting,
  # so this documents the effective value and must stay 10. Responses carry Keep-Alive: timeout=7;
  # put a load balancer's backend idle timeout below 8 s.
  idle_timeout_seconds: 10
  # Seconds between \`: ping\` comment lines on an idle SSE stream (keeps proxies from closing it).
  sse_heartbeat_seconds: 15
  # Bytes buffered for a slow SSE reader before its generation is paused.
  sse_max_buffered_bytes: 262144
  # Where pulled models are stored (inferctl pull, POST /api/pull): blobs/ holds the GGUF files,
  # named by SHA-256, manifests/ one small JSON file per model name. Empty = the user's cache
  # directory: $XDG_CACHE_HOME/inferflux/models or ~/.cache/inferflux/models (macOS
  # ~/Library/Caches/inferflux/models, Windows %LOCALAPPDATA%/inferflux/Cache/models). Relative
  # paths resolve against the working directory. Env: INFERFLUX_MODELS_DIR.
  models_dir: ""
  # Directory admin loads (POST /v1/admin/models, inferctl admin models --load) must come from; a
  # path outside it (symlinks resolved) is refused with 400 invalid_model_path. "" = any file the
  # server can read. Models in the models list of this file, and pulled models loaded by name
  # (they live in models_dir), are not confined.
  # Env: INFERFLUX_ADMIN_LOAD_DIR.
  admin_load_dir: ""
  # Where runtime model changes are kept (models loaded or unloaded through POST/DELETE
  # /v1/admin/models, the default set there, and LoRA adapters loaded through /v1/admin/adapters;
  # an adapter whose file changed since is not replayed), so a restart serves the same set: a
  # small JSON file written atomically (temp file, fsync, rename) after each change; nothing is
  # written until the first change. A file that does not parse stops start-up naming it. Relative
  # paths resolve against the working directory (as policy.store_path); "" = do not keep them (a
  # restart serves the models list below). Env: INFERFLUX_MODELS_STATE.
  models_state_path: config/models_state.json
  # Least severe log level written: trace, debug, info, warn, error, fatal or silent.
  # Env: INFERFLUX_LOG_LEVEL.
  log_level: info
  # Log line format on stdout: json (one JSON object a line, for collectors), pretty (coloured
  # text for people) or auto (pretty when stdout is a terminal, else json). Env: INFERFLUX_LOG_FORMAT.
  log_format: auto
  # One info line per tool call the server reads from a model's output (request id, choice, call
  # id, function name, format, arguments' length; never the arguments themselves), for agent
  # developers tracing what a model called. Env: INFERFLUX_LOG_TOOL_CALLS.
  log_tool_calls: false
  # Access-log sampling: the share of successful requests (status < 400) whose "request" line is
  # written, overall (rate) and per tenant (tenants: {team-a: 0.1}); errors are always written.
  # Decided from the request id, so a request is in or out the same way wherever it is looked up.
  # inferflux_log_lines_sampled_out_total{tenant} counts the lines left out.
  # Env: INFERFLUX_LOG_SAMPLE_RATE (the overall rate).
  log_sampling:
    rate: 1
    tenants: {}
  # In-process TLS (https). Files are PEM; start-up fails naming the key when one is missing,
  # unreadable, not PEM, or the key does not match the certificate.
  # Env: INFERFLUX_TLS_ENABLED, INFERFLUX_TLS_CERT_PATH, INFERFLUX_TLS_KEY_PATH.
  tls:
    enabled: false
    cert_path: ""
    key_path: ""
  # gRPC (service inferflux.v1.Inference, plus grpc.health.v1.Health for probes) on its own port,
  # same host, same TLS files, same pipeline as HTTP (src/http/grpc/inferflux.proto).
  # Env: INFERFLUX_GRPC_ENABLED, INFERFLUX_GRPC_PORT (0 picks a free one).
  grpc:
    enabled: false
    port: 50051
  # Browser access. allowed_origins: exact origins (https://app.example.com) or "*"; empty = no
  # CORS headers at all. Preflight OPTIONS requests are answered (204) before authentication.
  # allowed_headers: "*" allows whatever request headers the browser asks for.
  cors:
    allowed_origins: []
    allowed_headers: ["*"]
    max_age_seconds: 600

# Legacy single-model form. When set, it replaces \`models\` with one default entry whose id is the
# file name without \`.gguf\`. Env: INFERFLUX_MODEL_PATH.
model:
  path: ""

# Models to serve. Exactly one is the default (the first one if none says so).
# backend: cpu (default), or mps: llama.cpp's Metal backend with runtime.mps_layers layers on the
# GPU (macOS on Apple silicon; elsewhere start-up stops naming the entry), or auto: the first of
# runtime.backend_priority this machine has.
# embeddings (optional): auto = the model serves embeddings when its GGUF declares a pooling type
# (<arch>.pooling_type mean, cls or last: an embedding model); true = serve them anyway (a
# generative model then embeds with llama.cpp's default, its last token's hidden state); false = never.
# An entry names a file (path) or a model pulled into server.models_dir by its name (model:
# owner/repo:quant, as inferctl pull stored it; the id defaults to the name). A name not pulled
# stops start-up with the inferctl pull command to run.
# Env: INFERFLUX_MODELS="id=llama3,path=/models/llama3.gguf,backend=cpu,default=true,embeddings=auto;model=owner/repo:Q4_K_M;id=..."
models:
  # The demo model is generated on first start if the file is missing.
  - id: demo
    path: models/demo.gguf
    default: true
    backend: cpu

runtime:
  # llama.cpp threads per engine worker; auto = cores / (models x decode workers).
  # Env: INFERFLUX_THREADS_PER_WORKER.
  threads_per_worker: auto
  # Parallel sequences per engine worker context; auto = 16 with packed placement, else 4,
  # halved at start until the configured models' estimated memory (weights + KV cache of every
  # worker) fits runtime.memory_budget_bytes.
  # Env: INFERFLUX_SEQUENCES_PER_WORKER.
  sequences_per_worker: auto
  # Context length per sequence, in tokens. Env: INFERFLUX_CONTEXT_SIZE.
  context_size: 2048
  # llama.cpp batch size: tokens per decode step over all sequences.
  batch_size: 512
  # Largest piece of one prompt evaluated per step, so running streams keep flowing.
  prefill_chunk: 256
  # Prompt tokens per step (all prompts together) while any stream is decoding. On a CPU a step
  # costs about the same per token for prefill and decode, so this is the trade between running
  # streams' inter-token latency and a new long prompt's time to first token (bench/interference.ts).
  # Env: INFERFLUX_PREFILL_CHUNK_DECODING.
  prefill_chunk_decoding: 256
  # A step with at least this many tokens (a prompt chunk, or a decode step of that many streams)
  # runs on every free core while the other engine workers are idle, so a lone prompt or a packed
  # batch is evaluated on all cores; other steps use threads_per_worker. Threads are claimed from
  # one budget of runtime.cores, so the server never runs more llama.cpp threads than cores (a
  # worker waits one step instead). 0 = fixed threads.
  # Env: INFERFLUX_PREFILL_SPREAD_TOKENS.
  prefill_spread_tokens: 4
  # Cores the server may use; auto = os.availableParallelism(). Env: INFERFLUX_CORES.
  cores: auto
  # llama.cpp's threads: persistent = one pool per engine context, kept between steps (as
  # llama-server and llama-bench do); per_step = ggml starts and joins the threads of every
  # multi-thread step (node-llama-cpp's own way, measurably slower); auto = persistent when
  # npm run build could compile it (Linux, a C compiler), else per_step with a log line.
  # Env: INFERFLUX_THREADPOOL.
  threadpool: auto
  # How long idle pool threads spin before sleeping (ggml's polling level, 0-100). 0: at once, so
  # one worker's idle threads never take a core another worker is computing on.
  # Env: INFERFLUX_THREADPOOL_POLL.
  threadpool_poll: 0
  # llama.cpp's flash attention: auto = on where the backend has the kernel (every CPU), as in
  # llama-server and llama-bench; on; off. Changes the KV cache's layout, so KV state files
  # written under one setting are not read under the other. Env: INFERFLUX_FLASH_ATTENTION.
  flash_attention: auto
  # Layers offloaded to the GPU for models with backend: mps (Metal; macOS on Apple silicon only,
  # refused at start-up elsewhere): auto = every layer, or a count (the rest run on the CPU).
  # Env: INFERFLUX_MPS_LAYERS.
  mps_layers: auto
  # Models with backend: auto run on the first of these this machine has (mps: macOS on Apple
  # silicon; cpu: everywhere). /v1/models reports each model's backend_exposure (requested,
  # exposed, provenance) and inferflux_backend_exposures_total counts them.
  # Env: INFERFLUX_BACKEND_PRIORITY (comma-separated).
  backend_priority: [mps, cpu]
  # Priority and tenant fairness. Live-updatable.
  fairness:
    # Suspend a lower-priority running request (its KV is saved, nothing is lost) when a request at
    # or above high_priority_threshold waits and every sequence of its model is busy.
    enable_preemption: false
    # Requests with priority >= this may preempt (priority from the body, X-InferFlux-Priority, or the key).
    high_priority_threshold: 5
    # Generated tokens a request may run before yielding to an equal-or-higher waiter; 0 = off.
    max_timeslice_tokens: 0
  # Host KV page pool: prefixes evicted from engine sequences are kept here (per engine worker)
  # and loaded back instead of prefilled. Env: INFERFLUX_KV_CPU_PAGES, INFERFLUX_KV_EVICTION.
  paged_kv:
    # 256 KiB pages per engine worker; 0 turns the host tier (and the disk tier) off.
    cpu_pages: 512
    # Which snapshots go when the pool is full: lru or clock.
    eviction: lru
  # Disk tier under the host pool: evicted snapshots spill here and survive restarts (the index is
  # reloaded at start). Env: INFERFLUX_NVME_OFFLOAD_PATH, INFERFLUX_NVME_WORKERS, INFERFLUX_NVME_QUEUE_DEPTH.
  nvme_offload:
    # Directory on a fast local disk; "" = no disk tier.
    path: ""
    # Concurrent snapshot writers.
    workers: 2
    # Spills waiting for a writer; beyond this they are dropped (never blocking the engine).
    queue_depth: 64
  # Exact-match response reuse, opt-in: a deterministic request (temperature 0, or a fixed seed)
  # identical to an earlier one (model, prompt tokens, every sampling parameter) gets the stored
  # response without running the model. Env: INFERFLUX_RESPONSE_CACHE.
  response_cache:
    enabled: false
    max_entries: 1024
    max_bytes: 67108864
  # Whose KV a request may reuse (prefix cache tiers, sequences, live sharing) and whose cached
  # responses it may get. shared: anyone's with the same model and prompt prefix (most reuse).
  # tenant: only its own tenant's, so one tenant cannot learn from timings what prompts another
  # sent (the prefix-cache side channel). Either way a request's cache_salt (vLLM's field) narrows
  # reuse to requests with the same salt. Env: INFERFLUX_CACHE_ISOLATION.
  cache_isolation: shared
  # Memory the served models may use together, in bytes; loading one whose estimate (weights, plus
  # per engine worker: KV cache for context_size x sequences, compute buffers and thread overhead)
  # would pass it answers 507 insufficient_memory instead of loading. auto = the machine's memory
  # (the cgroup limit when lower). Env: INFERFLUX_MEMORY_BUDGET_BYTES.
  memory_budget_bytes: auto
  # Embeddings (/v1/embeddings, /api/embed, ...) run in a pool of their own worker threads, apart
  # from the engine workers' decode loop. Its workers start on the first embeddings request (or at
  # start-up when a configured model serves embeddings); their llama.cpp threads come on top of
  # the engine workers' (a running stream keeps its own threads).
  embeddings:
    # Embedding worker threads; each evaluates one input at a time. Env: INFERFLUX_EMBEDDINGS_WORKERS.
    workers: 1
    # llama.cpp threads per embedding worker. Env: INFERFLUX_EMBEDDINGS_THREADS.
    threads: 1
    # Tokens per input the embedding context holds (BOS/EOS included, less one llama.cpp keeps);
    # a longer input is 400 context_length_exceeded naming it (Ollama's truncate: true cuts it
    # instead). auto = runtime.context_size. Env: INFERFLUX_EMBEDDINGS_CONTEXT_SIZE.
    context_size: auto
    # Inputs per request (array input); more is 400. Env: INFERFLUX_EMBEDDINGS_BATCH_MAX.
    batch_max: 256
    # Requests waiting for a free embedding worker before new ones get 429 queue_full.
    # Env: INFERFLUX_EMBEDDINGS_MAX_QUEUE.
    max_queue: 64
  # Speculative decoding, off by default: on the measured CPU setup it made decoding slower
  # (bench/spec.ts, bench/README.md). A draft model sharing the target's tokenizer proposes up to
  # chunk_size tokens greedily; the target checks them all in one batch step and keeps the longest
  # prefix that matches its own greedy choice, so output is identical with and without it. Only
  # greedy requests speculate (temperature 0, no grammar/response_format, no logprobs, no
  # repetition penalties, min_tokens reached, not ignore_eos); the rest decode normally.
  # Env: INFERFLUX_SPECULATIVE_ENABLED, INFERFLUX_SPEC_DRAFT_MODEL, INFERFLUX_SPEC_MAX_PREFILL,
  # INFERFLUX_SPEC_CHUNK_SIZE.
  speculative_decoding:
    enabled: false
    # Draft GGUF (same vocabulary as every served model, checked at start). Required when enabled.
    draft_model: ""
    # Prompt tokens (the last ones) the draft model is given as context.
    max_prefill_tokens: 256
    # Draft tokens proposed, and verified in one step, per chunk.
    chunk_size: 4

scheduler:
  # Engine (decode) workers per model; auto = cores / models. Env: INFERFLUX_DECODE_POOL_SIZE.
  decode_pool_size: auto
  # 0 = unified mode: each engine worker prefills and decodes (the default: on a small CPU
  # machine it was faster, see bench/README.md). > 0 = disaggregated mode: this many prefill
  # workers per model evaluate prompts and hand each request, after its first token, to a decode
  # worker through a SharedArrayBuffer KV ring. Env: INFERFLUX_PREFILL_POOL_SIZE.
  prefill_pool_size: 0
  # Bytes of each decode worker's KV hand-off ring (disaggregated mode). A hand-off that does not
  # fit waits for space (counted in inferflux_kv_blocked_tickets_total). Env: INFERFLUX_KV_RING_BYTES.
  kv_ring_bytes: 67108864
  # Requests waiting for a sequence, per model, before new ones get 429.
  max_queue: 256
  # Unified mode, 2+ workers per model: a prompt with at least this many tokens left to prefill
  # gets its worker to itself; the streams running there move to the other workers (one step's
  # pause each) instead of waiting behind its prompt chunks. 0 = off.
  # Env: INFERFLUX_ISOLATE_PROMPT_TOKENS.
  isolate_prompt_tokens: 1024
  # Where new requests go among a model's engine workers. pack: onto the busiest worker with a
  # free sequence, so one batch runs on every core through the core budget while the other worker
  # stays free for long prompts (which go to the least loaded); spread: every request onto the
  # least loaded. auto = pack on 1-2 cores with 2+ unified workers (measured faster there,
  # bench/README.md), spread otherwise. Env: INFERFLUX_PLACEMENT.
  placement: auto
  # Tokenizer (chat template + tokenize) pool threads.
  tokenizer_workers: 1

limits:
  # Upper bound for max_tokens / max_completion_tokens.
  max_tokens: 4096
  # Upper bound for n (choices per request).
  max_n: 8
  # Upper bound for the number of stop sequences.
  max_stop: 4
  # Generation requests (streamed or not) one API key or OIDC subject may have in flight; the next
  # gets 429 too_many_concurrent_requests. 0 = unlimited. Env: INFERFLUX_MAX_CONCURRENT_REQUESTS_PER_KEY.
  max_concurrent_requests_per_key: 0

auth:
  # auto: API keys or OIDC tokens are required as soon as any key or OIDC issuer is configured
  # (here, in the env, or in the policy store). With none, the server runs OPEN, which start-up
  # reports with a WARNING, and only on a loopback host (127.0.0.1, ::1, localhost): binding another
  # address without credentials refuses to start. true: always required (start-up fails without a
  # key or issuer). false: off even when keys exist (start-up warns). Env: INFERFLUX_AUTH_ENABLED.
  enabled: auto
  # Entries: {key: <secret> | key_sha256: <hex sha256 of the key>, scopes: [...], tenant: <name>,
  # priority: <int>}. Scopes: admin, read, generate, adapter-manager; tenant defaults to "default".
  # Prefer key_sha256 (printf %s "$KEY" | sha256sum) so the file holds no secret; either way only
  # the hash is kept in memory.
  # Env: INFERFLUX_API_KEYS="key1:generate|read@team-a,key2:admin" (no scopes = generate|read;
  # no @tenant = default); INFERCTL_API_KEY adds one key with every scope (the CLI's key).
  api_keys: []
  # /metrics answers without credentials (Prometheus scrapers); false requires scope read.
  metrics_public: true
  oidc:
    # Issuer URL; "" = OIDC off. https (plain http only to loopback). Env: INFERFLUX_OIDC_ISSUER.
    issuer: ""
    # Required "aud" value. Env: INFERFLUX_OIDC_AUDIENCE.
    audience: ""
    # "" = discover through <issuer>/.well-known/openid-configuration.
    jwks_uri: ""
    # Claim with the scopes (space-separated or a list); for "scope", "scp" is read too.
    scopes_claim: scope
    # Claim with the tenant; absent = "default".
    tenant_claim: tenant
    # Tolerance for exp / nbf.
    clock_skew_seconds: 60
    # Accepted signature algorithms ("none" never is).
    algorithms: [RS256, ES256]
    # Least seconds between JWKS fetches, including re-fetches for an unknown kid.
    jwks_cooldown_seconds: 30

rate_limit:
  # Token buckets per minute; 0 = unlimited. Per API key / OIDC subject (all anonymous callers
  # share one bucket when auth is off), and per tenant (all its keys together). Tokens are prompt +
  # completion; a request is refused (429 with Retry-After) while a bucket is empty. The admin API
  # (PUT /v1/admin/rate_limit) changes them live. Env: INFERFLUX_RATE_LIMIT_PER_MINUTE.
  requests_per_minute: 0
  tokens_per_minute: 0
  tenant_requests_per_minute: 0
  tenant_tokens_per_minute: 0
  # Where the buckets live. "" = in this process: each replica limits on its own. A redis:// or
  # rediss:// URL = in that Redis, shared by every replica naming it (one atomic script per request,
  # Redis's clock). Env: INFERFLUX_RATE_LIMIT_REDIS_URL.
  redis_url: ""
  redis_prefix: "inferflux:rl:"
  # Bound on one Redis round trip; a request never waits for a reconnect.
  redis_timeout_ms: 100
  # When Redis does not answer: local (this process's buckets decide until it is back), open (admit),
  # closed (503 rate_limiter_unavailable). Env: INFERFLUX_RATE_LIMIT_REDIS_FAIL_MODE.
  redis_fail_mode: local

audit:
  # JSON-lines audit log. Env: INFERFLUX_AUDIT_LOG.
  path: logs/audit.log
  # Log raw prompt and response text instead of their SHA-256. Env: INFERFLUX_AUDIT_DEBUG.
  debug_mode: false
  # Milliseconds the writer gathers lines before one write + fsync (or 256 lines, if sooner). A
  # kill -9 loses at most this window's lines plus one fsync; SIGTERM loses none.
  # Env: INFERFLUX_AUDIT_FLUSH_INTERVAL_MS.
  flush_interval_ms: 20

guardrails:
  # Terms denied in prompts and in generated text (400 guardrail_denied, reason blocklist; a
  # stream that produces one is stopped with an SSE error event). Matching is case-insensitive
  # on Unicode NFKC-normalised text, by whole word; a leading or trailing * lifts that word edge
  # (classif* matches classified). Env: INFERFLUX_GUARDRAIL_BLOCKLIST=term1,term2.
  blocklist: []
  pii:
    # "off", "redact" (replace with [REDACTED:<kind>] before the model sees the prompt, and in
    # the output) or "block" (400 guardrail_denied, reason pii_<kind>).
    action: "off"
    # Detectors: email, phone, credit_card (Luhn-valid), iban (mod-97-valid), secret (API keys,
    # tokens, private keys, key=value secrets).
    kinds: [email, phone, credit_card, iban, secret]
    # Also filter generated text as it streams. A stream then holds back the word being written
    # (it may still become an email) and any number that may still become a phone or card until
    # the next characters decide, which delays its text by about a word; false scrubs prompts only.
    output: true
  # External policy engine, asked about every prompt after the local checks: http(s)://... (OPA
  # style: POST {"input": {...}} -> {"result": {"allow": bool, "reason": "..."}}), file://path.json
  # (a fixed result or a rule set; see docs/guardrails.md), or "" for none.
  # Env: INFERFLUX_GUARDRAIL_OPA_ENDPOINT.
  opa_endpoint: ""
  # Milliseconds to wait for the external engine. Env: INFERFLUX_GUARDRAIL_OPA_TIMEOUT_MS.
  opa_timeout_ms: 200
  # When it times out, is unreachable, answers non-2xx or garbage: "closed" denies (reason
  # opa_unavailable), "open" allows. Env: INFERFLUX_GUARDRAIL_OPA_FAIL_MODE.
  opa_fail_mode: closed

# OpenTelemetry traces, exported over OTLP/HTTP. Off (and free) while no endpoint is set.
# otlp_endpoint: the collector's base URL (http://collector:4318; /v1/traces is appended) or the
# full traces URL. Env: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (full URL) or OTEL_EXPORTER_OTLP_ENDPOINT
# (base URL), as every OpenTelemetry SDK reads them. Spans go as OTLP/HTTP with JSON bodies
# (http/json). OTEL_TRACES_EXPORTER=none turns export off; OTEL_SERVICE_NAME names the service
# (inferflux). A caller's traceparent is the parent; its sampled flag is respected.
telemetry:
  otlp_endpoint: ""

policy:
  # The policy store: API keys created through the admin API (as SHA-256 hashes), admin changes to
  # guardrails and rate limits, versioned. Relative paths resolve against the working directory.
  # AES-256-GCM encrypted when INFERFLUX_POLICY_PASSPHRASE is set (env only, never in this file).
  # Env: INFERFLUX_POLICY_STORE.
  store_path: config/policy_store.conf
  # Seconds between checks for changes written by another replica sharing the file (a file watch
  # usually reports them sooner).
  watch_interval_seconds: 5
  # Keep the store in Redis instead of the file, for replicas that share no volume: the same
  # envelope (encrypted with the passphrase) in one hash; changes are published, so replicas
  # adopt them within a round trip (and every watch_interval_seconds at worst). Run Redis with
  # appendonly yes to keep admin changes across its restarts. Env: INFERFLUX_POLICY_REDIS_URL.
  redis_url: ""
  redis_key: "inferflux:policy"

# Pulling models from a Hugging Face-style hub (inferctl pull, POST /api/pull).
pull:
  # The hub: its file listing (/api/models/OWNER/REPO/tree/main) picks the GGUF and gives its
  # SHA-256. https, or http to a host in allowed_private_hosts. Env: INFERFLUX_HUB_URL (or
  # HF_ENDPOINT, as the Hugging Face tools read it). Gated or private repositories need a token:
  # set HF_TOKEN in the environment (deliberately not a key here); it is sent to this URL's origin
  # only, never to the CDN downloads redirect to.
  hub_url: https://huggingface.co
  # A pull refuses loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
  # (169.254/16, where cloud metadata lives) and other non-public addresses, on the first request
  # and on every redirect, and plain http anywhere. Hosts (exact names), IPs or CIDRs listed here
  # are allowed anyway, plain http included: a mirror on the private network, or 127.0.0.1 for a
  # local hub. Env: INFERFLUX_PULL_ALLOWED_HOSTS (comma list).
  allowed_private_hosts: []
`;
