/**
 * The validated, typed server configuration. Built once at start-up by `loadConfig()` from the
 * embedded default, `config/server.yaml` (or `INFERFLUX_CONFIG`) and `INFERFLUX_*` overrides.
 * Every field is resolved: no `auto` survives validation (except `auth.enabled`, decided at start).
 */
import type { ApiKeyRecord, GuardrailPolicy, RateLimitPolicy } from './policy-types.js';

/** A llama.cpp backend a model can run on: `cpu` anywhere, `mps` (Metal) on macOS with Apple silicon. */
export type Backend = 'cpu' | 'mps';

/** What a model asked for, what it runs on, and why (config/load.ts `backendExposure`). */
export interface BackendExposure {
  requested: Backend | 'auto';
  exposed: Backend;
  provenance: 'config' | 'priority' | 'runtime';
  skipped: Backend[];
}

export interface ModelEntry {
  /** Id clients name in `model`. */
  id: string;
  /**
   * Absolute path of the GGUF file. For an entry naming a pulled model (`pulled`), '' until
   * start-up resolves the name in `server.models_dir` (src/runtime/model-files.ts).
   */
  path: string;
  /**
   * A pulled model's name (`owner/repo:quant`, as `inferctl pull` stored it in `server.models_dir`)
   * instead of a path. Defaults to none.
   */
  pulled?: string;
  /** Served when a request names no model. Exactly one entry is the default. */
  default: boolean;
  /**
   * `cpu`, or `mps`: llama.cpp's Metal backend with `runtime.mps_layers` layers offloaded (macOS on
   * Apple silicon only). Also the `backend` label of its metrics. Defaults to `cpu`.
   */
  backend: Backend;
  /**
   * Set when the entry said `backend: auto`: `backend` is then the first of
   * `runtime.backend_priority` this machine has, and `skipped` the ones before it it lacks.
   */
  backendAuto?: { skipped: Backend[] };
  /**
   * When true and the file is missing, the server generates the demo model there at start.
   * Only the built-in demo entry sets this.
   */
  generateIfMissing: boolean;
  /**
   * Serves embeddings: `auto` decides from the GGUF (a declared pooling type, see
   * `supportsEmbeddings`), `true`/`false` force it. Decided per request, like `auth.enabled` at
   * start, because the file is read after the config. Defaults to `auto`.
   */
  embeddings: 'auto' | boolean;
}

export interface ServerConfig {
  host: string;
  port: number;
  /** Largest accepted request body. Defaults to 1 MiB. */
  maxBodyBytes: number;
  /** Largest request head (request line + headers) answered; larger gets 431. Defaults to `16384`. */
  maxHeaderBytes: number;
  /**
   * Host header values answered (lower case; `*` = any, `*.x` = subdomains of x, `name:port`);
   * others get 421. Defaults to the loopback names when bound to loopback, else `['*']`.
   */
  allowedHosts: string[];
  /** Seconds an idle keep-alive connection stays open (uWS default is 10). */
  idleTimeoutSeconds: number;
  /** Seconds between SSE heartbeat comment lines on an idle stream. Defaults to 15. */
  sseHeartbeatSeconds: number;
  /** Bytes buffered for a slow SSE reader before the stream is paused. Defaults to 256 KiB. */
  sseMaxBufferedBytes: number;
  /**
   * Absolute directory of pulled models (blobs/ and manifests/). Defaults to the user's cache
   * directory (`$XDG_CACHE_HOME/inferflux/models`, `~/.cache/inferflux/models`).
   */
  modelsDir: string;
  /** Absolute directory admin model loads must come from; '' = no confinement. Defaults to `''`. */
  adminLoadDir: string;
  /**
   * Absolute path of the file keeping runtime model changes (admin loads, unloads, the default)
   * across restarts; '' = not kept. Defaults to `config/models_state.json` under the working directory.
   */
  modelsStatePath: string;
  /** Least severe level logged (`INFERFLUX_LOG_LEVEL`). Defaults to `info`. */
  logLevel: LogLevel;
  /** `auto` = pretty on a terminal, JSON lines otherwise (`INFERFLUX_LOG_FORMAT`). Defaults to `auto`. */
  logFormat: LogFormat;
  /** A log line per tool call read from model output (`INFERFLUX_LOG_TOOL_CALLS`). Defaults to `false`. */
  logToolCalls: boolean;
  /** Share of successful requests whose access line is written, overall and per tenant (errors always are). */
  logSampling: { rate: number; tenants: Record<string, number> };
  /** In-process TLS (SEC-5); gRPC uses the same files. */
  tls: TlsConfig;
  /** gRPC on its own port (src/http/grpc). Defaults to off, port 50051. */
  grpc: { enabled: boolean; port: number };
  /** Cross-origin access for browser clients. */
  cors: CorsConfig;
}

export interface TlsConfig {
  /** Serve https (uWS SSLApp). Defaults to `false`. */
  enabled: boolean;
  /** Absolute path of the PEM certificate (chain); checked readable and parseable at start. */
  certPath: string;
  /** Absolute path of the PEM private key; checked readable and parseable at start. */
  keyPath: string;
}

export interface CorsConfig {
  /** Origins allowed to call from a browser; `*` allows any. Empty = no CORS headers. Defaults to `[]`. */
  allowedOrigins: string[];
  /** Request headers a preflight may ask for; `*` echoes what the browser asks. Defaults to `['*']`. */
  allowedHeaders: string[];
  /** How long a browser may cache a preflight answer. Defaults to `600`. */
  maxAgeSeconds: number;
}

export interface OidcConfig {
  issuer: string;
  audience: string;
  /** '' = discover through `<issuer>/.well-known/openid-configuration`. */
  jwksUri: string;
  /** Claim holding scopes (space-separated string or array). Defaults to `scope` (`scp` also read). */
  scopesClaim: string;
  /** Claim holding the tenant. Defaults to `tenant`. */
  tenantClaim: string;
  /** Tolerance for `exp`/`nbf`. Defaults to `60`. */
  clockSkewSeconds: number;
  /** Accepted JWS algorithms. Defaults to `['RS256', 'ES256']`. */
  algorithms: string[];
  /** Least seconds between JWKS fetches (unknown-kid re-fetches included). Defaults to `30`. */
  jwksCooldownSeconds: number;
}

export interface AuthConfig {
  /**
   * `auto`: required when any API key or OIDC issuer is configured; with none, open (loopback
   * hosts only; start-up warns). `true`: required (no keys and no OIDC fails start-up).
   * `false`: off, whatever is configured (start-up warns). Defaults to `auto`.
   */
  enabled: 'auto' | boolean;
  /** Hashed keys from `auth.api_keys`, `INFERFLUX_API_KEYS` and `INFERCTL_API_KEY`. */
  apiKeys: ApiKeyRecord[];
  /** `/metrics` without credentials; false requires scope `read`. Defaults to `true`. */
  metricsPublic: boolean;
  /** null when no issuer is configured. */
  oidc: OidcConfig | null;
  /** Where `enabled` was set, for the start-up warning. */
  enabledSource: string;
}

export interface RuntimeConfig {
  /** llama.cpp threads per engine worker. */
  threadsPerWorker: number;
  /** Sequences (parallel requests) per engine worker context. */
  sequencesPerWorker: number;
  /**
   * `sequences_per_worker` was `auto`: start-up lowers `sequencesPerWorker` (halving) until the
   * configured models' estimated memory fits `memoryBudgetBytes` (src/registry/memory-estimate.ts).
   */
  sequencesAuto: boolean;
  /** Context length per sequence, in tokens. */
  contextSize: number;
  /** llama.cpp batch size (tokens per decode step, all sequences together). */
  batchSize: number;
  /** Largest chunk of one prompt evaluated in a single step, so running streams keep flowing. */
  prefillChunk: number;
  /** Prompt tokens per step, all prompts together, while any stream decodes. */
  prefillChunkDecoding: number;
  /**
   * Tokens in one step from which it runs on every free core while the other engine workers idle
   * (src/actors/core-budget.ts); 0 = fixed threads_per_worker. Defaults to 4: a prompt chunk, or a
   * decode step of 4+ streams (a packed batch, `scheduler.placement`).
   */
  prefillSpreadTokens: number;
  /** Cores the server may use; the sum of llama.cpp threads never exceeds it. */
  cores: number;
  /**
   * llama.cpp's threads: one persistent pool per engine context, or ggml's start-and-join per
   * multi-thread step; `auto` = persistent where the addon was built (src/runtime/llama/threadpool).
   */
  threadpool: 'auto' | 'persistent' | 'per_step';
  /** ggml polling level (0-100) of idle pool threads before they sleep. */
  threadpoolPoll: number;
  /** llama.cpp flash attention for engine contexts (`auto`: where the backend supports it). */
  flashAttention: 'auto' | 'on' | 'off';
  /** Layers on the GPU for models with `backend: mps` (`max` = all; `INFERFLUX_MPS_LAYERS`). Defaults to `max`. */
  mpsLayers: number | 'max';
  /** Where `backend: auto` models run: the first of these this machine has (`INFERFLUX_BACKEND_PRIORITY`). Defaults to `[mps, cpu]`. */
  backendPriority: Backend[];
  /** Priority and tenant fairness (live-updatable through the scheduler). */
  fairness: {
    enablePreemption: boolean;
    highPriorityThreshold: number;
    maxTimesliceTokens: number;
  };
  /** Host KV page pool per engine worker (256 KiB pages; 0 = off) and its eviction policy. */
  pagedKv: { cpuPages: number; eviction: 'lru' | 'clock' };
  /** Disk tier under the host pool ('' path = off), absolute path once loaded. */
  nvmeOffload: { path: string; workers: number; queueDepth: number };
  /** Exact-match reuse of deterministic responses (opt-in). */
  responseCache: { enabled: boolean; maxEntries: number; maxBytes: number };
  /** `tenant`: KV and cached responses are reused only within a tenant (`INFERFLUX_CACHE_ISOLATION`). Defaults to `shared`. */
  cacheIsolation: 'shared' | 'tenant';
  /** Bytes the served models may use together (estimated); `auto` resolves to the machine's memory. */
  memoryBudgetBytes: number;
  /** The embedding pool, apart from the engine workers. */
  embeddings: EmbeddingsConfig;
  /** Draft-model speculative decoding (greedy requests only); draftModel is an absolute path once loaded. */
  speculativeDecoding: { enabled: boolean; draftModel: string; maxPrefillTokens: number; chunkSize: number };
}

export interface EmbeddingsConfig {
  /** Embedding worker threads. Defaults to `1`. */
  workers: number;
  /** llama.cpp threads per embedding worker. Defaults to `1`. */
  threads: number;
  /** Tokens per input the embedding context holds. Defaults to `runtime.context_size`. */
  contextSize: number;
  /** Inputs per request. Defaults to `256`. */
  batchMax: number;
  /** Requests waiting for a worker before 429. Defaults to `64`. */
  maxQueue: number;
}

export interface SchedulerConfig {
  /** Engine (decode) workers per model. Each runs its own prefill in unified mode. */
  decodePoolSize: number;
  /** 0 = unified mode (prefill inside decode workers); > 0 = disaggregated prefill/decode pools. */
  prefillPoolSize: number;
  /** Bytes of each decode worker's KV hand-off ring (SharedArrayBuffer), disaggregated mode. */
  kvRingBytes: number;
  /** Requests waiting for a sequence, per model, before new ones get 429. */
  maxQueue: number;
  /** Unified mode: prompt tokens left to prefill from which a request gets its worker to itself; 0 = off. */
  isolatePromptTokens: number;
  /**
   * Where new requests go among a model's engine workers: `pack` fills the busiest worker that has
   * a free sequence (so one batch runs across every core while the others idle) and sends long
   * prompts to the least loaded; `spread` sends every request to the least loaded.
   */
  placement: 'pack' | 'spread';
  /** Tokenizer (chat template + tokenize) pool threads. */
  tokenizerWorkers: number;
}

export interface LimitsConfig {
  /** Upper bound for `max_tokens`. */
  maxTokens: number;
  /** Upper bound for `n`. */
  maxN: number;
  /** Upper bound for the number of stop sequences. */
  maxStop: number;
  /** Generation requests one key may have in flight; 0 = unlimited. */
  maxConcurrentRequestsPerKey: number;
}

export interface RateLimitBackendConfig {
  /** `''`: buckets in this process (each replica limits on its own); else a Redis all replicas share. */
  redisUrl: string;
  /** Prefix of the bucket keys in Redis. Defaults to `inferflux:rl:`. */
  redisPrefix: string;
  /** Bound on one Redis round trip. Defaults to `100`. */
  redisTimeoutMs: number;
  /** When Redis does not answer in time: `local` buckets decide (default), `open` admits, `closed` refuses (503). */
  redisFailMode: 'local' | 'open' | 'closed';
}

export interface AuditConfig {
  /** JSON-lines audit log path. */
  path: string;
  /** Log raw prompt and response text instead of their SHA-256. Defaults to false. */
  debugMode: boolean;
  /**
   * How long the audit writer gathers lines before one write + fsync. A `kill -9` loses at most
   * the lines of this window (plus one fsync); SIGTERM loses none. Defaults to `20`.
   */
  flushIntervalMs: number;
}

export interface PolicyStoreConfig {
  /**
   * Absolute path of the policy store file (resolved against the working directory). Encrypted
   * when `INFERFLUX_POLICY_PASSPHRASE` is set. Defaults to `config/policy_store.conf`.
   */
  storePath: string;
  /** Seconds between checks for changes other replicas wrote to the store. Defaults to `5`. */
  watchIntervalSeconds: number;
  /** `''`: the store is the file at `storePath`; else it lives in this Redis (shared by replicas). */
  redisUrl: string;
  /** The Redis hash of the store. Defaults to `inferflux:policy`. */
  redisKey: string;
}

export interface InferFluxConfig {
  server: ServerConfig;
  models: ModelEntry[];
  runtime: RuntimeConfig;
  scheduler: SchedulerConfig;
  limits: LimitsConfig;
  audit: AuditConfig;
  /**
   * Guardrails as configured (`guardrails` section + `INFERFLUX_GUARDRAIL_*`); the live ones are in
   * the policy document, which starts from these unless an admin changed them.
   */
  guardrails: GuardrailPolicy;
  policy: PolicyStoreConfig;
  auth: AuthConfig;
  /** Initial rate limits (the live ones are in the policy document). */
  rateLimit: RateLimitPolicy;
  /** Where the rate-limit buckets live. */
  rateLimitBackend: RateLimitBackendConfig;
  /** Pulling models from a hub. */
  pull: PullConfig;
  /** OpenTelemetry trace export. */
  telemetry: TelemetryConfig;
  /** Where the config came from, for the start-up log. */
  source: string;
}

export interface PullConfig {
  /** Base URL of the Hugging Face-style hub. Defaults to `https://huggingface.co`. */
  hubUrl: string;
  /**
   * Hosts (exact names), IPs or CIDRs a pull may reach although they are loopback, private or
   * link-local (plain http included). Defaults to `[]`.
   */
  allowedPrivateHosts: string[];
  /**
   * Bearer token for gated or private hub repositories, from `HF_TOKEN` (environment only, never a
   * config file key). Sent to the hub's own origin only, never to the CDN it redirects to.
   * Defaults to `null` (none).
   */
  hubToken: string | null;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface TelemetryConfig {
  /**
   * OTLP/HTTP traces endpoint from the config; the standard `OTEL_EXPORTER_OTLP_*` variables
   * override it (src/telemetry/tracing.ts). Empty = no traces. Defaults to `""`.
   */
  otlpEndpoint: string;
}
