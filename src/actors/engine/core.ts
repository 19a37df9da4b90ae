/**
 * The engine's pure core: which tokens go into the next llama.cpp batch, and what each sampled
 * token means (text, stop, length). No ports, no timers, no native calls: the shell passes time
 * in and performs the batch, so tests drive it step by step.
 *
 * Continuous batching: every step holds the next token of every running (unpaused) sequence,
 * then chunks of pending prompts up to the batch budget, at most `prefillChunk` tokens per prompt
 * per step, so a long prompt never stalls running streams for more than one chunk. A request
 * joins at the next step after it is admitted and leaves the step after it finishes.
 */
import type { FinishReason } from '../../runtime/finish-reason.js';
import type { AdmitBody, DoneStats, RequestId, ResumeState } from '../protocol.js';
import { StopMatcher } from '../../runtime/text/stop-matcher.js';
import { TokenTextStream, type Detokenize } from '../../runtime/text/token-text-stream.js';
import type { DraftRequest } from './speculator.js';

/** The sampler as the core sees it; the shell backs it with llama.cpp's sampler chain. */
export interface SlotSampler {
  /** Ban end-of-generation tokens (min_tokens not reached yet, or ignore_eos). */
  setEogBan(banned: boolean): void;
  dispose(): void;
}

export interface EngineCoreOptions {
  sequences: number;
  contextSize: number;
  batchSize: number;
  prefillChunk: number;
  /**
   * Prompt tokens per step, over all prompts, while any sequence is decoding. On a CPU a step
   * costs about the same per token whether it prefills or decodes, so this bounds how much a long
   * prompt slows running streams (inter-token latency) at the cost of that prompt's TTFT.
   * Defaults to `prefillChunk`.
   */
  prefillChunkDecoding?: number;
  detokenize: Detokenize;
  isEog(token: number): boolean;
  /**
   * Prefill role (disaggregated mode): a request leaves its sequence right after its first token,
   * through the same path as a suspension, to continue on a decode worker.
   */
  handoffAfterFirstToken?: boolean;
}

type Phase = 'prefill' | 'decode';

interface Slot<R> {
  seq: number;
  id: RequestId;
  req: AdmitBody;
  /** Opaque per-request handle for the shell (its port). */
  ref: R;
  sampler: SlotSampler;
  phase: Phase;
  prompt: Uint32Array;
  /** Length of the client's prompt (for a resumed request `prompt` also holds generated tokens). */
  promptLen: number;
  /** Prompt tokens already in the KV cache. */
  prefilled: number;
  /** KV position the next decode token is written at. */
  pos: number;
  /** Resumed requests do not announce a second start. */
  resumed: boolean;
  suspending: boolean;
  /** Prompt tokens that were already resident in the sequence at admission. */
  reused: number;
  /** Generated tokens that have been fed back through a decode step (so are in the KV cache). */
  fed: number[];
  /** Last sampled token, to be fed in the next decode step. */
  pending: number;
  /** The decode item's token list, reused every step (the batch copies it when it is built). */
  next: Uint32Array;
  generated: number;
  paused: boolean;
  cancelled: boolean;
  eogBanned: boolean;
  text: TokenTextStream;
  stop: StopMatcher;
  admittedAt: number;
  /** Disaggregated mode: when the prefill worker handed this request off (-1 otherwise). */
  handoffAt: number;
  /** First token sampled on this worker after a hand-off (KV transfer latency ends there). */
  firstDecodeAt: number;
  /** When the handed-off state was loaded into this worker's sequence (-1 before, or no hand-off). */
  hydratedAt: number;
  firstBatchAt: number;
  prefillDoneAt: number;
  firstTokenAt: number;
  /** Speculative decoding: verification chunks, chunks with a draft token accepted, draft tokens emitted. */
  specChunks: number;
  specAccepted: number;
  specReused: number;
}

export interface PlannedItem {
  slot: number;
  sequenceId: number;
  position: number;
  /** Valid for this step only: a decode item's list is the slot's buffer, rewritten at the next plan. */
  tokens: Uint32Array;
  wantLogits: boolean;
  /** Set by the step loop on a speculated decode item: logits at every token (pending + proposals). */
  allLogits?: boolean;
}

export interface StepPlan {
  items: PlannedItem[];
  /** Total tokens in the batch. */
  tokens: number;
}

/** A request leaving its sequence to be resumed later (preemption or timeslice yield). */
export interface SuspendedSlot<R> {
  ref: R;
  id: RequestId;
  seq: number;
  /** The body to queue again: tokens = prompt + generated so far, `resume` filled in. */
  body: AdmitBody;
  /** Tokens whose KV is in the sequence now (the state to save), a prefix of `body.tokens`. */
  kvTokens: Uint32Array;
}

export type Emission<R> =
  | { kind: 'started'; ref: R; queueMs: number }
  | { kind: 'text'; ref: R; id: RequestId; text: string; tokens: number }
  | { kind: 'done'; ref: R; id: RequestId; seq: number; reason: FinishReason; stats: DoneStats };

/** Where an admitted request landed. The shell trims the sequence's KV from `keep` onwards. */
export interface Admitted {
  seq: number;
  /** Resident prompt tokens reused (KV positions 0..keep-1 stay). */
  keep: number;
}

/** Prompt tokens given to the detokenizer as context for the first generated token. */
const PROMPT_CONTEXT_TOKENS = 4;
/** Shared prefix a sequence must hold to be chosen for it over an empty or idler one (see `choose`). */
const MIN_REUSE_TOKENS = 16;
/**
 * Tokens a copy from another sequence must save over what the request's own sequence or the cache
 * tiers give it (`copySource`, `prefixPending`). A copy moves the source's whole KV stream (one
 * per sequence: ~47 MB for 2048 cells of the bench model, a few ms), about the price of
 * prefilling ten tokens on a CPU; 32 keeps it well clear of that.
 */
export const MIN_COPY_GAIN_TOKENS = 32;
/**
 * A prompt chunk written at or past this KV position is evaluated without other prompts' chunks
 * in its step. llama.cpp's CPU flash attention (on by default, as in llama-server) costs every
 * sequence of a multi-token micro-batch a pass over all its cells whatever its token count: on
 * the bench model, 1 thread, at depth 760 one sequence's 56 tokens took 316 ms, 181 tokens 555 ms,
 * and three sequences' 60 each 1000 ms (at depth 8: 134, 382, 418). Batched, returning
 * conversations all waited for the sum; one per step, the first gets its token after its own
 * pass, running streams step more often, and the total is the same. Chunks from the start of a
 * prompt still share steps: there, measured at c=8 and c=16, one per step lost 5% tok/s.
 */
export const SOLO_PREFILL_DEPTH = 256;

export class EngineCore<R> {
  private readonly slots: (Slot<R> | null)[];
  /** Tokens whose KV cells each sequence holds (kept after a request ends, for reuse). */
  private readonly resident: number[][];
  /**
   * Sequences the shell is busy with outside a batch (saving or loading state): not free for
   * admission and not planned until released.
   */
  private readonly locked: boolean[];
  /** When each sequence last finished a request (engine steps), for LRU reuse. */
  private readonly lastUsed: number[];
  /** How many of a sequence's resident tokens were its last request's prompt (the rest it generated). */
  private readonly residentPrompt: number[];
  /**
   * The cache salt of the request whose KV each sequence holds (`AdmitBody.cacheSalt`): KV is
   * reused, copied or waited for only between requests of the same salt.
   */
  private readonly residentSalt: string[];
  private readonly byId = new Map<RequestId, number>();
  /** Admission order of slots still prefilling: first come, first prefilled. */
  private readonly prefillOrder: number[] = [];
  private steps = 0;
  private batchedTokens = 0;
  private cancelledCount = 0;

  constructor(private readonly opts: EngineCoreOptions) {
    this.slots = new Array<Slot<R> | null>(opts.sequences).fill(null);
    this.resident = Array.from({ length: opts.sequences }, () => []);
    this.locked = new Array<boolean>(opts.sequences).fill(false);
    this.lastUsed = new Array<number>(opts.sequences).fill(-1);
    this.residentPrompt = new Array<number>(opts.sequences).fill(0);
    this.residentSalt = new Array<string>(opts.sequences).fill('');
  }

  get active(): number {
    return this.byId.size;
  }

  hasFreeSlot(): boolean {
    return this.byId.size < this.slots.length;
  }

  status(): { active: number; paused: number; steps: number; batchedTokens: number; cancelled: number } {
    let paused = 0;
    for (const s of this.slots) if (s?.paused) paused++;
    return { active: this.byId.size, paused, steps: this.steps, batchedTokens: this.batchedTokens, cancelled: this.cancelledCount };
  }

  /**
   * Take a request into the free sequence holding the longest prefix of its prompt. Returns null
   * when every sequence is busy.
   */
  admit(req: AdmitBody, ref: R, sampler: SlotSampler, now: number): Admitted | null {
    const choice = this.choose(req.tokens, saltOf(req));
    if (!choice) return null;
    const { seq, keep } = choice;
    this.resident[seq]!.length = keep;
    this.residentSalt[seq] = saltOf(req);
    const r: ResumeState | undefined = req.resume;
    const generated = r?.generated ?? 0;
    const eogBanned = req.sampling.ignoreEos || req.sampling.minTokens > generated;
    sampler.setEogBan(eogBanned);
    this.slots[seq] = {
      seq,
      id: req.id,
      req,
      ref,
      sampler,
      phase: 'prefill',
      prompt: Uint32Array.from(req.tokens),
      promptLen: r?.promptTokens ?? req.tokens.length,
      prefilled: keep,
      pos: 0,
      resumed: r !== undefined,
      suspending: false,
      reused: keep,
      fed: [],
      pending: -1,
      next: new Uint32Array(1),
      generated,
      paused: false,
      cancelled: false,
      eogBanned,
      // A fresh request's first token is read after the prompt's last tokens, so a leading space
      // it carries stays (" a time" after "Once upon"), as llama.cpp's server and OpenAI return it.
      text: new TokenTextStream(this.opts.detokenize, r?.textHeld, r?.textContext ?? Array.from(req.tokens.slice(-PROMPT_CONTEXT_TOKENS))),
      stop: new StopMatcher(req.sampling.stop, r?.stopHeld),
      admittedAt: now,
      handoffAt: r?.ring?.handoffAt ?? -1,
      firstDecodeAt: -1,
      hydratedAt: -1,
      firstBatchAt: r?.firstBatchAt ?? -1,
      prefillDoneAt: r?.prefillDoneAt ?? -1,
      firstTokenAt: r?.firstTokenAt ?? -1,
      specChunks: 0,
      specAccepted: 0,
      specReused: 0,
    };
    this.byId.set(req.id, seq);
    this.prefillOrder.push(seq);
    return { seq, keep };
  }

  /**
   * Where `admit` would put a prompt, and what that sequence holds now (the shell may save it to
   * the prefix cache before it is overwritten). Pure: admitting the same prompt next chooses the same.
   */
  preview(tokens: readonly number[], salt: string): (Admitted & { resident: readonly number[]; residentPrompt: number; residentSalt: string }) | null {
    const c = this.choose(tokens, salt);
    return c ? { ...c, resident: this.resident[c.seq]!, residentPrompt: this.residentPrompt[c.seq]!, residentSalt: this.residentSalt[c.seq]! } : null;
  }

  /**
   * The free sequence a prompt sharing no prefix with any would take (`choose`'s order: next to
   * busy ones, then idle the longest) and what it holds. The shell saves its prompt while idle,
   * so the next new request does not wait for that on its way in. Null when none is free, or when
   * it is the sequence used last: a chat's next turn may come back to it and keep its answer too.
   */
  nextVictim(): { seq: number; resident: readonly number[]; residentPrompt: number; residentSalt: string; lastUsed: number } | null {
    const c = this.choose([], '');
    if (!c || this.lastUsed[c.seq]! >= Math.max(...this.lastUsed)) return null;
    return { seq: c.seq, resident: this.resident[c.seq]!, residentPrompt: this.residentPrompt[c.seq]!, residentSalt: this.residentSalt[c.seq]!, lastUsed: this.lastUsed[c.seq]! };
  }

  /**
   * The other sequence whose KV cells hold the longest prefix of `tokens` right now: a free one's
   * resident tokens, or a running request's prompt as far as it is prefilled. At most all but the
   * last token (its logits give the first sampled token). Sequences being saved or loaded, and
   * requests about to leave theirs, are left out, and so are those of another cache salt. Null
   * when none shares a token.
   */
  copySource(tokens: readonly number[], target: number, salt: string): { seq: number; length: number; free: boolean } | null {
    let best: { seq: number; length: number; free: boolean } | null = null;
    for (let i = 0; i < this.slots.length; i++) {
      if (i === target || this.locked[i] || this.residentSalt[i] !== salt) continue;
      const slot = this.slots[i];
      let length: number;
      if (slot === null) length = commonPrefix(this.resident[i]!, tokens);
      else if (slot.cancelled || slot.suspending) continue;
      else length = Math.min(commonPrefix(slot.prompt, tokens), slot.prefilled);
      length = Math.min(length, tokens.length - 1);
      if (length > (best?.length ?? 0)) best = { seq: i, length, free: slot === null };
    }
    return best;
  }

  /**
   * Whether a request for `tokens` should wait before taking a sequence, because a running
   * request is prefilling a prompt that starts with the same `MIN_COPY_GAIN_TOKENS`+ tokens more
   * than any sequence holds now (agents or chats sharing a system prompt that arrive together, or
   * the choices of an `n` > 1 request). Once that prefill is past the shared part, the waiting
   * request copies it (`copySource`) instead of prefilling the same tokens a second time.
   * `cached`: what the cache tiers hold of `tokens` (no need to wait for that much); asked only
   * when a prefill here shares more than the sequences hold, since it hashes the prompt.
   */
  prefixPending(tokens: readonly number[], salt: string, cached: () => number = () => 0): boolean {
    let later = 0;
    for (const slot of this.slots) {
      if (slot === null || slot.phase !== 'prefill' || slot.cancelled || slot.suspending || saltOf(slot.req) !== salt) continue;
      const shared = commonPrefix(slot.prompt, tokens);
      if (slot.prefilled < shared) later = Math.max(later, shared);
    }
    const cap = tokens.length - 1;
    later = Math.min(later, cap);
    // What could be copied now (copySource's cap is the same).
    const now = this.copySource(tokens, -1, salt)?.length ?? 0;
    if (later < now + MIN_COPY_GAIN_TOKENS) return false;
    return later >= Math.max(now, Math.min(cached(), cap)) + MIN_COPY_GAIN_TOKENS;
  }

  /** The shell trimmed a free sequence's KV to its first `length` tokens. */
  truncateResident(seq: number, length: number): void {
    const r = this.resident[seq]!;
    if (r.length > length) r.length = length;
    this.residentPrompt[seq] = Math.min(this.residentPrompt[seq]!, length);
  }

  /**
   * The free sequence holding the longest prefix of `tokens` worth reusing. A shorter shared
   * prefix (a BOS token, a chat template's opening) counts as none: evaluating it again costs
   * next to nothing, whereas overwriting the sequence that holds it loses that sequence's prompt
   * (or costs a snapshot of it to the prefix cache on the new request's path).
   *
   * Among equals, the one next to the most busy sequences, then the one idle the longest (LRU,
   * keeping recent prefixes for the requests most likely to come back). Neighbours first because
   * llama.cpp evaluates a step of several sequences (one KV stream each) as one micro-batch per
   * run of consecutive sequence ids, each a full pass over the weights: streams on sequences
   * 0-3 decode in one pass, on 0, 2, 4 and 6 in four (bench model, 2 threads, in-process: 31 ms
   * a step against 50 ms; the same four planned in the order 3, 2, 1, 0 took 55 ms).
   */
  private choose(tokens: readonly number[], salt: string): Admitted | null {
    let seq = -1;
    let keep = -1;
    let worth = -1;
    let near = -1;
    for (let i = 0; i < this.slots.length; i++) {
      if (this.slots[i] !== null || this.locked[i]) continue;
      // At least one prompt token is always evaluated: its logits give the first sampled token.
      // KV of another cache salt is never reused (it is as good as empty for this request).
      const match = tokens.length === 0 || this.residentSalt[i] !== salt ? 0 : Math.min(commonPrefix(this.resident[i]!, tokens), tokens.length - 1);
      const w = match >= Math.min(MIN_REUSE_TOKENS, tokens.length - 1) ? match : 0;
      const n = (this.slots[i - 1] ? 1 : 0) + (this.slots[i + 1] ? 1 : 0);
      if (w > worth || (w === worth && (n > near || (n === near && this.lastUsed[i]! < this.lastUsed[seq]!)))) {
        seq = i;
        keep = match;
        worth = w;
        near = n;
      }
    }
    return seq === -1 ? null : { seq, keep };
  }

  /** The cache salt of the KV a sequence holds ('' = shared). */
  residentSaltOf(seq: number): string {
    return this.residentSalt[seq]!;
  }

  /** Tokens resident in a sequence (tests, cache status). */
  residentTokens(seq: number): readonly number[] {
    return this.resident[seq]!;
  }

  /** Forget what a sequence holds (its KV was cleared or is untrusted). */
  forgetResident(seq: number): void {
    this.resident[seq]!.length = 0;
    this.residentPrompt[seq] = 0;
  }

  /** The shell is saving or loading this sequence's state: keep it out of admission and batches. */
  lock(seq: number): void {
    this.locked[seq] = true;
  }

  /** Done with the sequence; for a restored request, `restored` KV tokens are now in place. */
  unlock(seq: number, restored?: number): void {
    this.locked[seq] = false;
    const slot = this.slots[seq];
    if (slot && restored !== undefined && restored > slot.prefilled) {
      slot.prefilled = Math.min(restored, slot.prompt.length - 1);
      slot.reused = slot.prefilled;
    }
  }

  /** Ask for a request to leave its sequence at the next step boundary (see `reapSuspended`). */
  suspend(id: RequestId): boolean {
    const seq = this.byId.get(id);
    if (seq === undefined) return false;
    this.slots[seq]!.suspending = true;
    return true;
  }

  /**
   * Requests asked to suspend: they leave their sequences now (the KV stays; the shell saves it
   * while the sequence is locked) and come back as bodies to queue again.
   */
  reapSuspended(): SuspendedSlot<R>[] {
    const out: SuspendedSlot<R>[] = [];
    for (const slot of this.slots) {
      if (!slot?.suspending || slot.cancelled) continue;
      const decoding = slot.phase === 'decode';
      const kvTokens = decoding
        ? Uint32Array.from([...slot.prompt, ...slot.fed])
        : slot.prompt.slice(0, slot.prefilled);
      const tokens = decoding ? [...slot.prompt, ...slot.fed, slot.pending] : Array.from(slot.prompt);
      const text = slot.text.snapshot();
      const body: AdmitBody = {
        ...slot.req,
        tokens,
        resume: {
          promptTokens: slot.promptLen,
          generated: slot.generated,
          stateFile: '',
          stateTokens: kvTokens.length,
          textHeld: text.held,
          textContext: text.context,
          stopHeld: slot.stop.snapshot(),
          firstBatchAt: slot.firstBatchAt,
          prefillDoneAt: slot.prefillDoneAt,
          firstTokenAt: slot.firstTokenAt,
        },
      };
      this.release(slot);
      this.resident[slot.seq] = Array.from(kvTokens);
      this.residentPrompt[slot.seq] = kvTokens.length;
      slot.sampler.dispose();
      out.push({ ref: slot.ref, id: slot.id, seq: slot.seq, body, kvTokens });
    }
    return out;
  }

  requestAt(seq: number): RequestId | undefined {
    return this.slots[seq]?.id;
  }

  cancel(id: RequestId): void {
    const seq = this.byId.get(id);
    if (seq !== undefined) this.slots[seq]!.cancelled = true;
  }

  /** A handed-off request's state is now loaded into its sequence (ends kvHydrateMs). */
  markHydrated(id: RequestId, now: number): void {
    const seq = this.byId.get(id);
    if (seq !== undefined) this.slots[seq]!.hydratedAt = now;
  }

  setPaused(id: RequestId, paused: boolean): void {
    const seq = this.byId.get(id);
    if (seq !== undefined) this.slots[seq]!.paused = paused;
  }

  /** Requests cancelled since the last step: they end now, without another batch. */
  reapCancelled(now: number): Emission<R>[] {
    const out: Emission<R>[] = [];
    for (const slot of this.slots) {
      if (slot?.cancelled) out.push(this.finish(slot, 'cancelled', now));
    }
    return out;
  }

  plan(now: number): StepPlan {
    const items: PlannedItem[] = [];
    let budget = this.opts.batchSize;
    for (const slot of this.slots) {
      if (!slot || slot.phase !== 'decode' || slot.paused || slot.cancelled || slot.suspending || budget === 0) continue;
      if (this.locked[slot.seq]) continue;
      slot.next[0] = slot.pending;
      items.push({
        slot: slot.seq,
        sequenceId: slot.seq,
        position: slot.pos,
        tokens: slot.next,
        wantLogits: true,
      });
      budget--;
    }
    // While streams are decoding, prompts share a smaller per-step budget (see prefillChunkDecoding).
    if (items.length > 0) budget = Math.min(budget, this.opts.prefillChunkDecoding ?? this.opts.prefillChunk);
    let prompts = 0;
    let deep = false;
    for (const seq of this.prefillOrder) {
      if (budget === 0 || deep) break;
      const slot = this.slots[seq]!;
      if (slot.cancelled || slot.suspending || this.locked[seq]) continue;
      const take = Math.min(slot.prompt.length - slot.prefilled, this.opts.prefillChunk, budget);
      if (take <= 0) continue;
      // A deep chunk goes alone: the first in order takes the step, a later one waits for its own.
      if (slot.prefilled >= SOLO_PREFILL_DEPTH) {
        if (prompts > 0) continue;
        deep = true;
      }
      prompts++;
      const end = slot.prefilled + take;
      if (slot.firstBatchAt < 0) slot.firstBatchAt = now;
      items.push({
        slot: seq,
        sequenceId: seq,
        position: slot.prefilled,
        tokens: slot.prompt.subarray(slot.prefilled, end),
        wantLogits: end === slot.prompt.length,
      });
      budget -= take;
    }
    // Sequences in increasing id order: llama.cpp splits a batch over several KV streams (one per
    // sequence) into micro-batches of consecutive sequence ids taken in batch order, and each
    // micro-batch is a full pass over the weights.
    items.sort(bySlot);
    let tokens = 0;
    for (const it of items) tokens += it.tokens.length;
    return { items, tokens };
  }

  /**
   * What the draft model should propose for a decode item, or null when the item decodes normally.
   * Only requests whose every token is the target's argmax with no state carried between
   * positions can be verified several positions at once and stay exact: temperature 0, no
   * grammar, no log probabilities, no repetition penalties, and no end-of-generation ban pending
   * (it lifts at a token count, min_tokens). Proposals stay inside max_tokens and the context.
   */
  draftRequest(item: PlannedItem, chunkSize: number): DraftRequest | null {
    const slot = this.slots[item.slot];
    if (!slot || slot.phase !== 'decode' || item.tokens.length !== 1 || slot.eogBanned) return null;
    const s = slot.req.sampling;
    if (s.temperature !== 0 || s.grammar !== null || s.logprobs !== null) return null;
    if (s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0) return null;
    if (this.opts.handoffAfterFirstToken) return null;
    // The verification writes pending + `want` cells from `pos` and yields up to want + 1 tokens.
    const want = Math.min(chunkSize, s.maxTokens - slot.generated - 1, this.opts.contextSize - slot.pos - 2);
    if (want < 1) return null;
    return { seq: slot.seq, prompt: slot.prompt, generated: [...slot.fed, slot.pending], want };
  }

  /**
   * KV cells of a sequence that hold tokens the core counts as fed (after `apply`): the shell
   * trims the rest (rejected proposals, or accepted ones after the request stopped).
   */
  validCells(seq: number): number {
    const slot = this.slots[seq];
    return slot ? slot.pos : this.resident[seq]!.length;
  }

  /**
   * Apply a decoded step. `sampled[i]` is the token sampled for `plan.items[i]`, or -1 where the
   * item asked for no logits. For a speculated item (tokens = pending + proposals), `more[i]` are
   * the target's tokens after each accepted proposal: they are taken one by one through the same
   * path as normal tokens, so stop sequences, max_tokens and end-of-generation end it the same.
   */
  apply(plan: StepPlan, sampled: ArrayLike<number>, now: number, more?: readonly (readonly number[] | undefined)[]): Emission<R>[] {
    this.steps++;
    this.batchedTokens += plan.tokens;
    const out: Emission<R>[] = [];
    for (let i = 0; i < plan.items.length; i++) {
      const item = plan.items[i]!;
      const slot = this.slots[item.slot];
      if (!slot || slot.cancelled) continue;
      if (slot.phase === 'decode') {
        slot.fed.push(item.tokens[0]!);
        slot.pos++;
      }
      if (slot.phase === 'prefill') {
        slot.prefilled += item.tokens.length;
        if (!item.wantLogits) continue;
        slot.phase = 'decode';
        slot.pos = slot.prompt.length;
        this.prefillOrder.splice(this.prefillOrder.indexOf(slot.seq), 1);
        if (!slot.resumed) {
          slot.prefillDoneAt = now;
          out.push({ kind: 'started', ref: slot.ref, queueMs: Math.max(0, slot.firstBatchAt - slot.req.enqueuedAt) });
        }
      }
      const token = sampled[i]!;
      const speculated = item.allLogits === true;
      if (speculated) {
        slot.specChunks++;
        if ((more?.[i]?.length ?? 0) > 0) slot.specAccepted++;
      }
      this.acceptToken(slot, token, now, out);
      if (speculated) this.acceptMore(slot, item, more?.[i] ?? [], now, out);
    }
    return out;
  }

  /** Release every slot (shutdown); their requests end as cancelled. */
  drain(now: number): Emission<R>[] {
    const out: Emission<R>[] = [];
    for (const slot of this.slots) if (slot) out.push(this.finish(slot, 'cancelled', now));
    return out;
  }

  /** A verified chunk's further tokens: each accepted proposal was fed at the next position. */
  private acceptMore(slot: Slot<R>, item: PlannedItem, more: readonly number[], now: number, out: Emission<R>[]): void {
    for (let j = 0; j < more.length; j++) {
      // The request ended (stop, length) or leaves its sequence: the rest is not taken.
      if (this.slots[slot.seq] !== slot || slot.suspending) return;
      slot.fed.push(item.tokens[j + 1]!);
      slot.pos++;
      slot.specReused++;
      this.acceptToken(slot, more[j]!, now, out);
    }
  }

  private acceptToken(slot: Slot<R>, token: number, now: number, out: Emission<R>[]): void {
    if (slot.firstTokenAt < 0) slot.firstTokenAt = now;
    if (slot.handoffAt >= 0 && slot.firstDecodeAt < 0) slot.firstDecodeAt = now;
    const s = slot.req.sampling;
    if (token < 0 || (this.opts.isEog(token) && !slot.eogBanned)) {
      this.emitText(slot, slot.text.flush(), 0, out, true);
      out.push(this.finish(slot, 'stop', now));
      return;
    }
    slot.generated++;
    slot.pending = token;
    if (slot.eogBanned && !s.ignoreEos && slot.generated >= s.minTokens) {
      slot.eogBanned = false;
      slot.sampler.setEogBan(false);
    }
    const stopped = this.emitText(slot, slot.text.push(token), 1, out, false);
    if (stopped) {
      out.push(this.finish(slot, 'stop', now));
      return;
    }
    // The token just sampled is fed at `pos`; one more must fit after it.
    const contextFull = slot.pos + 1 >= this.opts.contextSize;
    if (slot.generated >= s.maxTokens || contextFull) {
      this.emitText(slot, slot.text.flush(), 0, out, true);
      out.push(this.finish(slot, 'length', now));
      return;
    }
    if (this.opts.handoffAfterFirstToken) slot.suspending = true;
  }

  /** Runs text through the stop matcher; returns true when a stop sequence ended the request. */
  private emitText(slot: Slot<R>, text: string, tokens: number, out: Emission<R>[], final: boolean): boolean {
    const r = slot.stop.push(text);
    let emit = r.emit;
    if (final && !r.stopped) emit += slot.stop.flush();
    if (emit.length > 0 || tokens > 0) out.push({ kind: 'text', ref: slot.ref, id: slot.id, text: emit, tokens });
    return r.stopped;
  }

  private release(slot: Slot<R>): void {
    this.slots[slot.seq] = null;
    this.lastUsed[slot.seq] = this.steps;
    this.byId.delete(slot.id);
    const pi = this.prefillOrder.indexOf(slot.seq);
    if (pi !== -1) this.prefillOrder.splice(pi, 1);
  }

  private finish(slot: Slot<R>, reason: FinishReason, now: number): Emission<R> {
    this.release(slot);
    // Exactly the tokens whose KV cells were written: the prefilled prompt, then every generated
    // token that went through a decode step (the last sampled one never did).
    const kept = Array.from(slot.prompt.subarray(0, slot.prefilled));
    if (slot.prefilled === slot.prompt.length) for (const t of slot.fed) kept.push(t);
    this.resident[slot.seq] = kept;
    this.residentPrompt[slot.seq] = slot.prefilled;
    if (reason === 'cancelled') this.cancelledCount++;
    slot.sampler.dispose();
    const firstBatch = slot.firstBatchAt < 0 ? now : slot.firstBatchAt;
    const prefillDone = slot.prefillDoneAt < 0 ? now : slot.prefillDoneAt;
    return {
      kind: 'done',
      ref: slot.ref,
      id: slot.id,
      seq: slot.seq,
      reason,
      stats: {
        promptTokens: slot.promptLen,
        cachedTokens: Math.min(slot.reused, slot.promptLen),
        completionTokens: slot.generated,
        queueMs: Math.max(0, firstBatch - slot.req.enqueuedAt),
        prefillMs: Math.max(0, prefillDone - firstBatch),
        decodeMs: Math.max(0, now - prefillDone),
        ttftMs: slot.firstTokenAt < 0 ? -1 : Math.max(0, slot.firstTokenAt - slot.req.enqueuedAt),
        kvTransferMs: slot.handoffAt >= 0 && slot.firstDecodeAt >= 0 ? Math.max(0, slot.firstDecodeAt - slot.handoffAt) : -1,
        kvHydrateMs: slot.handoffAt >= 0 && slot.hydratedAt >= 0 ? Math.max(0, slot.hydratedAt - slot.handoffAt) : -1,
        stopSequence: reason === 'stop' ? slot.stop.matched : null,
        ...(slot.specChunks > 0 ? { spec: [slot.specChunks, slot.specAccepted, slot.specReused] as [number, number, number] } : {}),
      },
    };
  }
}

/** Plan items in sequence-id order (see `plan`); one comparator, not a closure per step. */
function bySlot(a: PlannedItem, b: PlannedItem): number {
  return a.slot - b.slot;
}

/** The request's cache salt; '' (shared) when it has none. */
export function saltOf(req: AdmitBody): string {
  return req.cacheSalt ?? '';
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
