/**
 * What the HTTP edge sees of the actor system: a main-thread facade that tokenizes, admits and
 * streams. Route handlers depend on this interface only, never on workers or ports.
 */
import type { InferFluxError } from '../errors.js';

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  /** Text content; array content parts are flattened to text by the route before this point. */
  content: string;
  name?: string;
}

/** Sampling and stopping, already validated and defaulted by the route schema. */
export interface SamplingParams {
  /** Upper bound on generated tokens; undefined = until the context is full. */
  maxTokens: number | undefined;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  /** Fixed seed for reproducible sampling; undefined = random. */
  seed: number | undefined;
  stop: string[];
  presencePenalty: number;
  frequencyPenalty: number;
  repeatPenalty: number;
  /** Token id -> bias; -100 bans the token. Ids are checked against the vocabulary. */
  logitBias: Record<string, number>;
  /** Keep generating through end-of-generation tokens (benchmarks, llama.cpp/vLLM extension). */
  ignoreEos: boolean;
  /** Suppress end-of-generation before this many tokens (vLLM extension). */
  minTokens: number;
}

export type PromptInput =
  | { kind: 'chat'; messages: ChatMessage[] }
  | { kind: 'text'; text: string }
  | { kind: 'tokens'; tokens: number[] };

export interface GenerateInput {
  requestId: string;
  /** Model id from the request; undefined selects the default model. */
  model: string | undefined;
  prompt: PromptInput;
  params: SamplingParams;
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
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from KV already in the engine (prefix reuse), not prefilled again. */
  cachedTokens: number;
}

export interface StartMeta {
  model: string;
  promptTokens: number;
  created: number;
}

/**
 * Token sink lifecycle: `onStart` once, then `onText` any number of times per choice, then one
 * `onChoiceEnd` per choice, then `onEnd` once; or `onError` once at any point instead of the rest.
 */
export interface TokenSink {
  onStart(meta: StartMeta): void;
  onText(choice: number, text: string): void;
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
  created: number;
  ownedBy: string;
  isDefault: boolean;
  /** Context length per sequence the server runs the model with. */
  contextSize: number;
  /** From GGUF metadata. */
  architecture: string;
  trainContextSize: number;
  parameterCount: number;
  vocabSize: number;
  /** True while at least one engine worker for it is ready. */
  ready: boolean;
}

export interface PoolReport {
  name: string;
  workers: number;
  ready: number;
  restarts: number;
}

export interface ReadyReport {
  ready: boolean;
  models: { id: string; ready: boolean }[];
  pools: PoolReport[];
}

export interface Gateway {
  generate(input: GenerateInput, sink: TokenSink): GenerationHandle;
  models(): ModelInfo[];
  readiness(): ReadyReport;
}
