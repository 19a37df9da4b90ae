/**
 * Every message that crosses a thread boundary, in one place.
 *
 * Hot frames (admit, tokens, done, cancel, pause) are short arrays with a numeric tag in slot 0,
 * packed with msgpackr into a Uint8Array and posted with the buffer transferred. Control calls
 * (init, status, shutdown) are comlink RPC on a separate port and use the object types at the end.
 * `PROTOCOL_VERSION` travels in every worker's init reply; a mismatch stops the spawn.
 *
 * Switch on `m[0]` with a `never` default so a new message kind breaks the build wherever it is
 * not handled.
 */
import type { WireError } from '../errors.js';
import type { AuditEvent } from '../audit/event.js';
import type { FinishReason } from '../runtime/finish-reason.js';
import type { EngineSampling } from '../runtime/sampling.js';
import type { ChatTemplateMessage, ChatTemplateTool } from '../runtime/chat-template.js';
import { pack, unpack } from '../runtime/frame-codec.js';

export { pack, unpack };
export type { AuditEvent, EngineSampling };

export const PROTOCOL_VERSION = 7;

export type RequestId = string & { readonly __brand: 'RequestId' };
export type TokenId = number & { readonly __brand: 'TokenId' };

export const T = {
  Admit: 1,
  Cancel: 2,
  Pause: 3,
  Resume: 4,
  Started: 5,
  Text: 6,
  Done: 7,
  Fail: 8,
  Released: 9,
  QueueDepth: 10,
  EngineUp: 11,
  EngineDown: 12,
  Audit: 13,
  Suspend: 14,
  Suspended: 15,
  Progress: 16,
  Resident: 17,
  Handoff: 18,
  Ship: 19,
} as const;

/**
 * A suspended request's progress, carried in its AdmitBody when it goes back to the queue.
 * On resume, `tokens` of the body already holds prompt + generated tokens (the last one not yet
 * evaluated), so the engine re-enters like a prompt whose prefix is cached: its KV comes from the
 * sequence itself (same worker, not overwritten) or from `stateFile`, and only the last token is
 * evaluated. The next sampled token is the one an uninterrupted run would have produced.
 */
export interface ResumeState {
  /** Length of the original prompt (usage and stop accounting). */
  promptTokens: number;
  generated: number;
  /** Sequence state of tokens[0 .. stateTokens) saved at suspension (tmpfs), or '' if none. */
  stateFile: string;
  stateTokens: number;
  /** Token-to-text state: tokens held back (incomplete UTF-8) and recent context tokens. */
  textHeld: number[];
  textContext: number[];
  /** Text held back by the stop-sequence matcher. */
  stopHeld: string;
  /**
   * Disaggregated hand-off: the state travels through decode worker `to`'s KV ring as frame
   * `ticket`, written by prefill worker `from` once the scheduler has placed the request.
   */
  ring?: { ticket: string; from: number; to: number; handoffAt: number };
  /** Queue and prefill timings so far, so the final stats cover the whole request. */
  firstBatchAt: number;
  prefillDoneAt: number;
  firstTokenAt: number;
}

/**
 * A LoRA adapter a request runs under: `key` (content + scale, registry/adapter-registry.ts) says
 * which KV it may share; the engine applies `path` at `scale` to its whole context.
 */
export interface AdapterRef {
  key: string;
  path: string;
  scale: number;
  /** SHA-256 of the file the main thread checked: a worker loading it checks it again. */
  sha256: string;
}

/** What the scheduler and engine need to run one choice of one request. */
export interface AdmitBody {
  id: RequestId;
  model: string;
  tokens: number[];
  sampling: EngineSampling;
  /** Performance.timeOrigin-relative ms when the main thread enqueued it. */
  enqueuedAt: number;
  priority: number;
  /** Fair-share account (the caller's tenant). */
  tenant: string;
  /** Prompt fingerprint (runtime/prefix/block-hash.ts, salted with the adapter key): placement prefers the worker holding it. */
  prefix: number[];
  /** The LoRA adapter, or null for the base model. */
  adapter: AdapterRef | null;
  /**
   * Cache isolation (runtime.cache_isolation, a request's `cache_salt`): KV computed for this
   * request is reused only by requests with the same salt, in sequences and in the cache tiers.
   * Absent or '' = shared.
   */
  cacheSalt?: string;
  /** Set when a suspended request is placed again. */
  resume?: ResumeState;
}

/** Timings (ms) and counts an engine reports when a choice ends. */
export interface DoneStats {
  promptTokens: number;
  /** Prompt tokens whose KV was reused from the sequence's previous request (not prefilled). */
  cachedTokens: number;
  completionTokens: number;
  queueMs: number;
  prefillMs: number;
  decodeMs: number;
  /** Wall-clock ms between enqueue and the first generated token. */
  ttftMs: number;
  /** Disaggregated mode: prefill hand-off -> first decode step on the decode worker, else -1. */
  kvTransferMs: number;
  /** The stop sequence that ended the choice (reason `stop`), null when it was end-of-generation or another reason. */
  stopSequence: string | null;
  /**
   * Disaggregated mode: prefill hand-off -> state loaded into the decode worker's sequence, ready
   * for its first step (the part of kvTransferMs that moves KV; the rest is waiting for and running
   * that step), else -1.
   */
  kvHydrateMs: number;
  /**
   * Speculative decoding (only when some step verified draft tokens): verification chunks,
   * chunks where at least one draft token was accepted, draft tokens emitted.
   */
  spec?: [chunks: number, accepted: number, reused: number];
}

// ---- main -> scheduler (on the scheduler's hot port; the request port rides in the transfer list)
export type AdmitFrame = [typeof T.Admit, AdmitBody];
export type CancelFrame = [typeof T.Cancel, RequestId];
/** Scheduler -> engine: suspend this request at the next step boundary (preemption / yield). */
export type SuspendFrame = [typeof T.Suspend, RequestId];
/** Scheduler -> prefill engine: write hand-off `ticket`'s KV into decode worker `to`'s ring. */
export type ShipFrame = [typeof T.Ship, { ticket: string; to: number }];
/** An engine joined (or re-joined after a scheduler restart with `active` requests running). */
export type EngineUpFrame = [typeof T.EngineUp, { model: string; worker: number; sequences: number; active: number; role: EngineRole }];
export type EngineDownFrame = [typeof T.EngineDown, { model: string; worker: number; role: EngineRole }];
export type ToScheduler = AdmitFrame | CancelFrame | EngineUpFrame | EngineDownFrame;

// ---- scheduler -> main
/** Per model and phase: `prefill` queues exist only in disaggregated mode. */
export type QueueDepthFrame = [typeof T.QueueDepth, { model: string; phase: 'prefill' | 'decode'; queued: number; active: number }];
export type FromScheduler = QueueDepthFrame;

/** How hot frames travel on a port: the packed frame, plus a transferred port where one rides along. */
export interface Envelope {
  f: Uint8Array;
  port?: import('node:worker_threads').MessagePort;
}

// ---- scheduler -> engine (on the engine's link port; request port in the transfer list)
export type ToEngine = AdmitFrame | SuspendFrame | ShipFrame;

// ---- engine -> scheduler (link port)
/** The request left its sequence; `generated` tokens since the last Progress report. */
export type ReleasedFrame = [typeof T.Released, RequestId, number];
/** Suspended at a step boundary; the request port rides along, the body carries `resume`. */
export type SuspendedFrame = [typeof T.Suspended, { body: AdmitBody; generated: number }];
/** Generated tokens since the last report, as flat pairs [id, n, id, n, ...]. */
export type ProgressFrame = [typeof T.Progress, (RequestId | number)[]];
/**
 * Prefill engine -> scheduler: the prompt is evaluated and its first token sent; the request (port
 * riding along) moves to the decode pool. `body.resume.ring.ticket` names the saved state.
 */
export type HandoffFrame = [typeof T.Handoff, { body: AdmitBody; generated: number }];
/** Fingerprints of the prefixes the engine's sequences hold now (placement by prefix). */
export type ResidentFrame = [typeof T.Resident, number[][]];
export type FromEngine = ReleasedFrame | SuspendedFrame | ProgressFrame | ResidentFrame | HandoffFrame;

// ---- engine -> main (on the request port)
export type StartedFrame = [typeof T.Started, { queueMs: number }];
/**
 * Text released for the client, and how many tokens produced it; with the request's log
 * probabilities, one entry per token counted here: [token text, logprob, [[alt text, logprob]...]].
 */
export type WireLogprob = [string, number, [string, number][]];
export type TextFrame = [typeof T.Text, string, number] | [typeof T.Text, string, number, WireLogprob[]];
export type DoneFrame = [typeof T.Done, FinishReason, DoneStats];
export type FailFrame = [typeof T.Fail, WireError];
export type OnRequestPortFromEngine = StartedFrame | TextFrame | DoneFrame | FailFrame;

// ---- main -> engine (on the request port)
export type PauseFrame = [typeof T.Pause];
export type ResumeFrame = [typeof T.Resume];
export type OnRequestPortToEngine = CancelFrame | PauseFrame | ResumeFrame;

// ---- main -> audit writer
export type AuditFrame = [typeof T.Audit, AuditEvent];

interface FramePort {
  postMessage(value: unknown, transfer?: readonly (ArrayBuffer | import('node:worker_threads').MessagePort)[]): void;
}

/** Reused by postFrame for frames without a port (see there); hold nothing between posts. */
const NO_BYTES = new Uint8Array(0);
const plainEnvelope: Envelope = { f: NO_BYTES };
const plainTransfer: ArrayBuffer[] = [NO_BYTES.buffer as ArrayBuffer];

/**
 * Post a hot frame as an `Envelope`, transferring its bytes (no copy on the receiving side) and
 * the port that rides along, if any.
 */
export function postFrame(port: FramePort, frame: unknown, ride?: import('node:worker_threads').MessagePort): void {
  const f = pack(frame);
  if (ride) {
    port.postMessage({ f, port: ride }, [f.buffer as ArrayBuffer, ride]);
    return;
  }
  // Tokens go out one frame each: the envelope and transfer list are reused (postMessage clones
  // the one and reads the other before it returns); only the transferred bytes are new.
  plainEnvelope.f = f;
  plainTransfer[0] = f.buffer as ArrayBuffer;
  try {
    port.postMessage(plainEnvelope, plainTransfer);
  } finally {
    plainEnvelope.f = NO_BYTES;
    plainTransfer[0] = NO_BYTES.buffer as ArrayBuffer;
  }
}


// ---- control RPC (comlink) ----

export interface WorkerHello {
  protocolVersion: number;
}

/**
 * `unified`: prefill and decode in one worker. Disaggregated mode: `prefill` workers evaluate
 * prompts and hand requests off after the first token; `decode` workers hydrate and stream.
 */
export type EngineRole = 'unified' | 'prefill' | 'decode';

export interface EngineInit {
  role: EngineRole;
  /** Decode workers' KV rings: a decode worker gets its own, a prefill worker every one of its model's. */
  rings: SharedArrayBuffer[];
  model: string;
  modelPath: string;
  worker: number;
  threads: number;
  /**
   * The process's cores shared by all engine workers (core-budget.ts): this worker's slot, and the
   * step size from which a step claims every free core while the other workers idle (0 = never).
   */
  cores: { budget: SharedArrayBuffer; slot: number; spreadTokens: number };
  sequences: number;
  contextSize: number;
  batchSize: number;
  /** llama.cpp flash attention (runtime.flash_attention). */
  flashAttention: 'auto' | 'on' | 'off';
  /** Layers offloaded to Metal (`max` = all) for a model with `backend: mps`; null = CPU only. */
  metalLayers: number | 'max' | null;
  prefillChunk: number;
  /** Prompt tokens per step while any sequence decodes (bounds running streams' latency). */
  prefillChunkDecoding: number;
  /** Host page pool pages for evicted prefixes (0 = off), eviction policy, and the disk tier. */
  kvCpuPages: number;
  kvEviction: 'lru' | 'clock';
  nvmePath: string;
  nvmeWorkers: number;
  nvmeQueueDepth: number;
  /** Speculative decoding's draft model and chunking, or null when off (runtime.speculative_decoding). */
  speculative: { draftModelPath: string; maxPrefillTokens: number; chunkSize: number } | null;
}

export interface EngineReady extends WorkerHello {
  model: string;
  worker: number;
  sequences: number;
  contextSize: number;
  vocabSize: number;
  trainContextSize: number;
  architecture: string;
  parameterCount: number;
}

export interface EngineStatus {
  /** Hand-off frames a full KV ring turned away (each was retried). */
  blockedTickets: number;
  /** Hand-off frames written to a ring. */
  shippedTickets: number;
  active: number;
  paused: number;
  steps: number;
  /** Total tokens decoded in batches since start (prefill + generated). */
  batchedTokens: number;
  cancelled: number;
  /** Key of the LoRA adapter the context runs now ('' = base), and how often it swapped. */
  adapter: string;
  adapterSwaps: number;
  /** Grammar-constrained samples by how they were drawn (batch-adapter.ts `grammarSamples`). */
  grammarSamples: Record<'mask' | 'free' | 'redraw' | 'fallback' | 'llama', number>;
  /** Where the step loop's time went since the worker started (`/debug`, bench/profile-step.ts). */
  stepTiming: StepTiming;
}

/**
 * Where an engine step loop's time went, summed over every step since start (ms,
 * performance.now()): `decode` is the batch on the libuv pool (with its JS glue and any draft
 * proposals), `sample` from the decode's end to the last sampled token (native sampling and its
 * libuv round trips), `apply` the core's decisions, detokenizing and posting tokens, `between`
 * admissions, cancels, KV moves. The worker logs it at shutdown (bench/profile-step.ts reads that
 * line) and reports it in its status (`/debug`).
 */
export interface StepTiming {
  steps: number;
  decodeMs: number;
  sampleMs: number;
  applyMs: number;
  betweenMs: number;
}

/** Tokenizer pool task (piscina; structured clone, not msgpack: it is request/response). */
export interface TokenizeTask {
  modelPath: string;
  prompt:
    | { kind: 'chat'; messages: ChatTemplateMessage[]; tools?: ChatTemplateTool[] | undefined }
    | { kind: 'text'; text: string };
}

export interface TokenizeResult {
  tokens: number[];
}

/** Tokenizer pool task `tokenizeText` (llama.cpp server's `/tokenize` options). */
export interface TokenizeTextTask {
  modelPath: string;
  text: string;
  addSpecial: boolean;
  parseSpecial: boolean;
  withPieces: boolean;
}

export interface TokenizeTextResult {
  tokens: number[];
  pieces?: string[];
}

/** Tokenizer pool task `detokenize`: ids are checked against the vocabulary in the worker. */
export interface DetokenizeTask {
  modelPath: string;
  tokens: number[];
}

/** Tokenizer pool task `applyTemplate`: the rendered chat prompt as text. */
export interface ApplyTemplateTask {
  modelPath: string;
  messages: { role: string; content: string; name?: string }[];
}

// ---- embedding pool (control RPC with comlink: one request, one answer; see actors/embedding) ----

export interface EmbeddingInit {
  worker: number;
  /** llama.cpp threads of this worker's embedding contexts. */
  threads: number;
  /** Tokens per input the embedding context holds (one input evaluated at a time). */
  contextSize: number;
}

export interface EmbeddingReady extends WorkerHello {
  worker: number;
}

/** One input: text (tokenized with the model's vocabulary) or token ids as given. */
export type EmbedInputItem = { text: string } | { tokens: number[] };

export interface EmbedTask {
  modelPath: string;
  inputs: EmbedInputItem[];
  /**
   * Longest input in tokens (BOS/EOS included). Inputs over it are cut to it when `truncate`,
   * else the task fails with `context_length_exceeded` naming the input. Capped by the context.
   */
  maxTokens: number;
  truncate: boolean;
  /** How an error names input i: `param` alone when `single`, else `param[i]`. */
  param: string;
  single: boolean;
}

export interface EmbedResult {
  /** One L2-normalised vector per input, in input order. */
  vectors: Float32Array[];
  /** Tokens evaluated per input (BOS/EOS included, after any truncation). */
  tokens: number[];
  /** ms spent loading the model in this worker for this task (0 when it was loaded already). */
  loadMs: number;
  /** ms spent evaluating the inputs. */
  evalMs: number;
}
