/**
 * The generation contract: what every layer above the actors shares about one generation (its
 * input, the token sink's lifecycle, usage and finish reasons) and the facade that runs it
 * (`Gateway`). Protocol routes, the policy layer and tests depend on these types only, never on
 * workers, ports or frames.
 */
import type { BackendExposure } from '../config/types.js';
import type { InferFluxError } from '../errors.js';
import type { FinishReason } from '../runtime/finish-reason.js';
import type { SamplingSettings } from '../runtime/sampling.js';
import type { ChatTemplateTool } from '../runtime/chat-template.js';
import type { EngineDebug, PoolReport } from '../actors/system.js';

export type { EngineDebug };
import type { Capabilities, Capability } from '../registry/capabilities.js';
import type { ModelMetadata } from '../registry/model-metadata.js';
import type { ModelState, RegistryChange } from '../registry/model-registry.js';

export type { Capabilities, Capability, FinishReason, ModelMetadata, ModelState, PoolReport, RegistryChange, SamplingSettings };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  /** Text content; array content parts are flattened to text by the route before this point. */
  content: string;
  name?: string;
  /** An assistant turn's earlier tool calls. */
  toolCalls?: ToolCall[] | undefined;
  /** A tool turn: the id of the call it answers. */
  toolCallId?: string | undefined;
}

/** A function the model may call (rendered into the prompt by the chat template or the preamble). */
export type ToolSpec = ChatTemplateTool;

/** A call the model made: `arguments` is JSON text, as OpenAI sends it. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export type PromptInput =
  | { kind: 'chat'; messages: ChatMessage[]; tools?: ToolSpec[] | undefined }
  | { kind: 'text'; text: string }
  | { kind: 'tokens'; tokens: number[] };

export interface GenerateInput {
  requestId: string;
  /**
   * Model id from the request; undefined selects the default model. `base:adapter` selects a
   * loaded LoRA adapter of `base` (when no model has that whole id).
   */
  model: string | undefined;
  /** The request's `adapter` field: a loaded LoRA adapter of the model (same as `model: "base:adapter"`). */
  adapter?: string | undefined;
  /** The request's `cache_salt`: its KV and response are reused only by requests with the same salt. */
  cacheSalt?: string | undefined;
  prompt: PromptInput;
  /** Sampling and stopping as the protocol mapped them (see runtime/sampling.ts). */
  params: SamplingSettings;
  /** Number of independent choices. */
  n: number;
  /** Key id / tenant for audit lines and fair sharing (from the authenticated principal). */
  keyId?: string | undefined;
  tenant?: string | undefined;
  /** Scheduling priority, higher first (request `priority`, `X-InferFlux-Priority`, or the key's default). Defaults to 0. */
  priority?: number | undefined;
  /** W3C traceparent of the HTTP request, for the audit line. */
  traceparent?: string | undefined;
  /** Route pattern the request came in on (`/v1/chat/completions`, an alias), for the audit line. */
  route?: string | undefined;
  /**
   * The request's own name for `params.maxTokens`, so a refusal names the field the client sent
   * (`max_output_tokens` on Responses, `options.num_predict` on Ollama). Defaults to `max_tokens`.
   */
  maxTokensField?: string | undefined;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from KV already in the engine (prefix reuse), not prefilled again. */
  cachedTokens: number;
  /**
   * Where choice 0's time went, as its engine measured it (Ollama's and LM Studio's durations and
   * tokens/s). Zeros for a response served from the response cache; absent where nothing ran.
   */
  timings?: GenerationTimings | undefined;
  /** The stop sequence that ended choice 0 (Anthropic's `stop_sequence`); null or absent when none did. */
  stopSequence?: string | null | undefined;
}

export interface GenerationTimings {
  /** Admission to the first batch on an engine. */
  queueMs: number;
  /** Evaluating the prompt (the part not reused from cache). */
  prefillMs: number;
  /** Generating the completion, after the prompt (a disaggregated hand-off's `kvTransferMs` included). */
  decodeMs: number;
  /** Disaggregated mode: the prefill worker's hand-off to the decode worker's first step; absent otherwise. */
  kvTransferMs?: number;
}

export interface StartMeta {
  model: string;
  promptTokens: number;
  created: number;
  /** Main-thread time turning the prompt into tokens (chat template, tokenizer pool round trip), ms. */
  tokenizeMs?: number;
}

/** One generated token's log probability, and the most likely alternatives (descending). */
export interface TokenLogprob {
  token: string;
  logprob: number;
  top: { token: string; logprob: number }[];
}

/**
 * Token sink lifecycle: `onStart` once, then `onText` any number of times per choice, then one
 * `onChoiceEnd` per choice, then `onEnd` once; or `onError` once at any point instead of the rest.
 */
export interface TokenSink {
  onStart(meta: StartMeta): void;
  /** `logprobs`: one entry per token this text came from, when the request asked for them. */
  onText(choice: number, text: string, logprobs?: TokenLogprob[]): void;
  onChoiceEnd(choice: number, reason: FinishReason, completionTokens: number): void;
  onEnd(usage: Usage): void;
  onError(err: InferFluxError): void;
}

export interface GenerationHandle {
  /** Stop generating (client went away). Idempotent; the sink gets no further calls after it. */
  cancel(): void;
  /** Backpressure: the engine skips this request's sequences in its batches until `resume()`. */
  pause(): void;
  resume(): void;
}

export interface ModelInfo {
  id: string;
  path: string;
  /** The pulled model's name when it was loaded by name (`owner/repo:quant`), else null. */
  pulled: string | null;
  created: number;
  ownedBy: string;
  isDefault: boolean;
  /** Context length per sequence the server runs the model with. */
  contextSize: number;
  /** From GGUF metadata. */
  architecture: string;
  trainContextSize: number;
  parameterCount: number;
  /** From the loaded engine; 0 while none is ready. */
  vocabSize: number;
  /** True while the model is `ready` and at least one engine worker for it is up. */
  ready: boolean;
  /** Registry state: loading, ready, unloading, failed. */
  state: ModelState;
  capabilities: Capabilities;
  /** Hex SHA-256 of the file, null while it is still being computed. */
  sha256: string | null;
  /** `config` (server.yaml / env) or `admin` (loaded at runtime). */
  source: 'config' | 'admin';
  /** Why it failed to load (state `failed`). */
  error: string | null;
  /** What the GGUF header says (architecture, parameters, quantisation, MoE, chat template...). */
  metadata: ModelMetadata;
  /** Estimated bytes the model holds while served (weights, KV, worker overhead). */
  memoryBytes: number;
  /** The backend it asked for, the one it runs on, and why (`runtime.backend_priority`). */
  backendExposure: BackendExposure;
  /** LoRA adapters loaded for this model (requests pick one as `id:adapter` or with `adapter`). */
  adapters?: AdapterInfo[];
}

/** One loaded LoRA adapter (`/v1/admin/adapters`). */
export interface AdapterInfo {
  id: string;
  /** Base model id. */
  model: string;
  path: string;
  scale: number;
  sha256: string;
  rank: number;
  alpha: number;
  /** Base tensors it adapts. */
  targets: number;
  state: 'loading' | 'ready' | 'unloading';
  /** Requests running under it now. */
  inflight: number;
  loadedAt: string;
}

export interface LoadAdapterRequest {
  model: string;
  id: string;
  path: string;
  scale: number;
}

/** Runtime LoRA adapter management (`/v1/admin/adapters`). */
export interface AdapterControl {
  list(): AdapterInfo[];
  /** Resolves once every engine worker of the model holds it; rejects with 400/404/409/422. */
  load(req: LoadAdapterRequest): Promise<AdapterInfo>;
  /** Resolves once no request runs under it any more (new ones are refused at once). */
  unload(id: string): Promise<void>;
}

export interface ReadyReport {
  /** The scheduler is up and the default model is ready. */
  ready: boolean;
  models: { id: string; ready: boolean; state: ModelState; default: boolean; error?: string }[];
  pools: PoolReport[];
}

export interface LoadModelRequest {
  /** Id clients will name; defaults to `model` when a pulled model is loaded. */
  id?: string;
  /** A GGUF file (exactly one of `path` and `model`). */
  path?: string;
  /** A pulled model's name in `server.models_dir` (`owner/repo:quant`). */
  model?: string;
  /** Make it the default once ready. */
  default?: boolean;
}

/** Runtime model management (`/v1/admin/models`): load, unload (draining), default. */
export interface ModelControl {
  /** Resolves once the model serves; rejects with the table's errors (409, 400, 422, 507...). */
  load(req: LoadModelRequest): Promise<ModelInfo>;
  /** Resolves once running requests finished and the workers are gone. */
  unload(id: string): Promise<void>;
  /** Resolves once the change is kept (server.models_state_path). */
  setDefault(id: string): Promise<ModelInfo>;
  /** Every registry change, as it happens. */
  onChange(listener: (change: RegistryChange) => void): void;
}

/** Live `runtime.fairness.*` settings. */
export interface FairnessSettings {
  enablePreemption: boolean;
  highPriorityThreshold: number;
  maxTimesliceTokens: number;
}

/** Runtime controls the admin API reaches through the facade. */
export interface CacheControl {
  /** Per engine worker: its prefix cache tiers and what its sequences hold. */
  status(): Promise<unknown>;
  /** Drops every cached prefix; resolves to the snapshots removed. */
  flush(): Promise<number>;
}

export interface FairnessControl {
  get(): FairnessSettings;
  set(patch: Partial<FairnessSettings>): Promise<FairnessSettings>;
}

/** What a GGUF file says about itself, for model detail routes (Ollama `/api/show`). */
export interface ModelFileInfo {
  /** Every metadata key; array values longer than `maxArray` come back empty (Ollama's non-verbose show). */
  metadata: Record<string, unknown>;
  /** `tokenizer.chat_template`, '' when the file has none. */
  chatTemplate: string;
  /** Bytes on disk. */
  size: number;
  /** Last modification of the file, ms since the epoch. */
  modifiedMs: number;
  /** Dominant tensor type of the weights, e.g. `Q8_0`, `F16`. */
  quantization: string;
}

/** Text to tokens the llama.cpp-server way (`/tokenize`). */
export interface TokenizeText {
  text: string;
  /** Prepend BOS when the model asks for it. */
  addSpecial: boolean;
  /** Turn special-token text (`<|im_end|>`) into its id instead of plain text. */
  parseSpecial: boolean;
  /** Also return each token's text. */
  withPieces: boolean;
}

export interface TokenizedText {
  tokens: number[];
  /** Present when `withPieces` was asked for. */
  pieces?: string[];
}

/** One input to embed: text (tokenized with the model's vocabulary) or token ids as given. */
export type EmbedItem = { text: string } | { tokens: number[] };

export interface EmbedInput {
  requestId: string;
  /** Model id from the request; undefined selects the default model. */
  model: string | undefined;
  inputs: EmbedItem[];
  /**
   * Longest input in tokens; null = the embedding context's. Inputs over it are cut to it when
   * `truncate` (Ollama's `truncate: true`), else refused (400 naming the input).
   */
  maxTokens: number | null;
  truncate: boolean;
  /** How errors name input i: `param` alone when `single` (one string), else `param[i]`. */
  param: string;
  single: boolean;
  /** Caller, trace and route for the audit line (from the policy pipeline). */
  keyId?: string | undefined;
  tenant?: string | undefined;
  traceparent?: string | undefined;
  route?: string | undefined;
}

export interface EmbedOutput {
  model: string;
  /** One L2-normalised vector per input, in input order. */
  vectors: Float32Array[];
  /** Tokens evaluated, all inputs together (BOS/EOS included). */
  promptTokens: number;
  /** ms loading the model for this request (0 when it was loaded), evaluating, and in total. */
  loadMs: number;
  evalMs: number;
  totalMs: number;
}

/** One generation in flight, as the operations console shows it (ids and counts only, no text). */
export interface RunningGeneration {
  requestId: string;
  model: string;
  route: string | undefined;
  keyId: string | undefined;
  tenant: string | undefined;
  /** `queued` until a choice starts on an engine (tokenizing, waiting for a sequence), then `running`. */
  phase: 'queued' | 'running';
  promptTokens: number;
  /** Tokens generated so far, all choices together. */
  generatedTokens: number;
  /** Milliseconds since the gateway took the request. */
  ageMs: number;
  /** Milliseconds from the gateway taking it to its first generated token; null before that. */
  ttftMs: number | null;
}

export interface Gateway {
  generate(input: GenerateInput, sink: TokenSink): GenerationHandle;
  /**
   * Embeds the inputs on the embedding pool (never the decode loop). Rejects with
   * `embeddings_not_supported` for a model without the capability; `signal` drops a request still
   * waiting for a worker.
   */
  embed(input: EmbedInput, signal?: AbortSignal): Promise<EmbedOutput>;
  models(): ModelInfo[];
  /** Resolves a request's model id (undefined = the default model); `model_not_found` otherwise. */
  model(id: string | undefined): ModelInfo;
  /** Prompt tokens a generation of this prompt would use (chat template applied), without running it. */
  countTokens(model: string | undefined, prompt: PromptInput): Promise<number>;
  tokenize(model: string | undefined, req: TokenizeText): Promise<TokenizedText>;
  /** Token ids back to text; ids outside the vocabulary are refused (`invalid_request`). */
  detokenize(model: string | undefined, tokens: number[]): Promise<string>;
  /** The model's chat template applied to the messages, with the generation prompt appended. */
  applyTemplate(model: string | undefined, messages: ChatMessage[]): Promise<string>;
  /** The model's GGUF metadata (read once per model, then cached). */
  modelFile(model: string | undefined, opts?: { maxArray?: number }): Promise<ModelFileInfo>;
  readiness(): ReadyReport;
  /** Generations in flight, oldest first (absent: the console shows none). */
  running?(): RunningGeneration[];
  /** Prefix cache status and flush (absent: `/v1/admin/cache` is not served). */
  readonly cache?: CacheControl | undefined;
  /** Live fairness settings (absent: `/v1/admin/fairness` is not served). */
  readonly fairness?: FairnessControl | undefined;
  /** Runtime model management (absent: `/v1/admin/models` is not served). */
  readonly modelControl?: ModelControl | undefined;
  /** Runtime LoRA adapter management (absent: `/v1/admin/adapters` is not served). */
  readonly adapterControl?: AdapterControl | undefined;
  /** Token traces of recent requests and the engines' live state (absent: `/debug` is not served). */
  readonly debug?: DebugControl | undefined;
}

/** What `/debug` reads: recent requests' token traces and every engine worker's state. */
export interface DebugControl {
  traces(): TokenTraceSummary[];
  trace(requestId: string): TokenTraceDetail | undefined;
  engines(): Promise<EngineDebug[]>;
}

/** Token traces of finished requests (`/debug`; recorded by src/generation/token-trace.ts). */
export interface InterTokenStats {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** One finished request, summarised (the `/debug` list). */
export interface TokenTraceSummary {
  request_id: string;
  at: string;
  model: string;
  adapter: string | null;
  route: string | null;
  key_id: string | null;
  tenant: string | null;
  /** HTTP-style outcome: 200, 499 (client left), or the error's status. */
  status: number;
  /** The audit decision (`allow`, `allow:cached`, `cancelled`, `error:<code>`). */
  outcome: string;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  finish_reasons: string[];
  latency_ms: number;
  ttft_ms: number | null;
  /** Where the time went, as the engine measured it (tokenize is the main thread's). */
  timings_ms: { tokenize: number; queue: number; prefill: number; decode: number; kv_transfer: number | null };
  /** Gaps between consecutive tokens of a choice, ms (null with fewer than two tokens). */
  inter_token_ms: InterTokenStats | null;
  /** Completion tokens over the time from the first token to the last (null with fewer than two). */
  decode_tokens_per_s: number | null;
  truncated: boolean;
}

/** One request's whole trace (`/debug/traces/{request_id}`). */
export interface TokenTraceDetail extends TokenTraceSummary {
  /** Per choice: ms from the request's arrival to each of its tokens, in order. */
  choices: { index: number; finish_reason: string; token_times_ms: number[] }[];
}
