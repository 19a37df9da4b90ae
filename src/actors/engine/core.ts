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
import type { FinishReason } from '../gateway-types.js';
import type { AdmitBody, DoneStats, RequestId } from '../protocol.js';
import { StopMatcher } from '../../runtime/text/stop-matcher.js';
import { TokenTextStream, type Detokenize } from '../../runtime/text/token-text-stream.js';

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
  detokenize: Detokenize;
  isEog(token: number): boolean;
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
  /** Prompt tokens already in the KV cache. */
  prefilled: number;
  /** Last sampled token, to be fed in the next decode step. */
  pending: number;
  generated: number;
  paused: boolean;
  cancelled: boolean;
  eogBanned: boolean;
  text: TokenTextStream;
  stop: StopMatcher;
  admittedAt: number;
  firstBatchAt: number;
  prefillDoneAt: number;
  firstTokenAt: number;
}

export interface PlannedItem {
  slot: number;
  sequenceId: number;
  position: number;
  tokens: Uint32Array;
  wantLogits: boolean;
}

export interface StepPlan {
  items: PlannedItem[];
  /** Total tokens in the batch. */
  tokens: number;
}

export type Emission<R> =
  | { kind: 'started'; ref: R; queueMs: number }
  | { kind: 'text'; ref: R; text: string; tokens: number }
  | { kind: 'done'; ref: R; id: RequestId; seq: number; reason: FinishReason; stats: DoneStats };

export class EngineCore<R> {
  private readonly slots: (Slot<R> | null)[];
  private readonly byId = new Map<RequestId, number>();
  /** Admission order of slots still prefilling: first come, first prefilled. */
  private readonly prefillOrder: number[] = [];
  private steps = 0;
  private batchedTokens = 0;
  private cancelledCount = 0;

  constructor(private readonly opts: EngineCoreOptions) {
    this.slots = new Array<Slot<R> | null>(opts.sequences).fill(null);
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

  /** Take a request into a free sequence. Returns false when every sequence is busy. */
  admit(req: AdmitBody, ref: R, sampler: SlotSampler, now: number): boolean {
    const seq = this.slots.indexOf(null);
    if (seq === -1) return false;
    const eogBanned = req.sampling.ignoreEos || req.sampling.minTokens > 0;
    sampler.setEogBan(eogBanned);
    this.slots[seq] = {
      seq,
      id: req.id,
      req,
      ref,
      sampler,
      phase: 'prefill',
      prompt: Uint32Array.from(req.tokens),
      prefilled: 0,
      pending: -1,
      generated: 0,
      paused: false,
      cancelled: false,
      eogBanned,
      text: new TokenTextStream(this.opts.detokenize),
      stop: new StopMatcher(req.sampling.stop),
      admittedAt: now,
      firstBatchAt: -1,
      prefillDoneAt: -1,
      firstTokenAt: -1,
    };
    this.byId.set(req.id, seq);
    this.prefillOrder.push(seq);
    return true;
  }

  requestAt(seq: number): RequestId | undefined {
    return this.slots[seq]?.id;
  }

  cancel(id: RequestId): void {
    const seq = this.byId.get(id);
    if (seq !== undefined) this.slots[seq]!.cancelled = true;
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
      if (!slot || slot.phase !== 'decode' || slot.paused || slot.cancelled || budget === 0) continue;
      items.push({
        slot: slot.seq,
        sequenceId: slot.seq,
        position: slot.prompt.length + slot.generated - 1,
        tokens: Uint32Array.of(slot.pending),
        wantLogits: true,
      });
      budget--;
    }
    for (const seq of this.prefillOrder) {
      if (budget === 0) break;
      const slot = this.slots[seq]!;
      if (slot.cancelled) continue;
      const take = Math.min(slot.prompt.length - slot.prefilled, this.opts.prefillChunk, budget);
      if (take <= 0) continue;
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
    let tokens = 0;
    for (const it of items) tokens += it.tokens.length;
    return { items, tokens };
  }

  /**
   * Apply a decoded step. `sampled[i]` is the token sampled for `plan.items[i]`, or -1 where the
   * item asked for no logits.
   */
  apply(plan: StepPlan, sampled: ArrayLike<number>, now: number): Emission<R>[] {
    this.steps++;
    this.batchedTokens += plan.tokens;
    const out: Emission<R>[] = [];
    for (let i = 0; i < plan.items.length; i++) {
      const item = plan.items[i]!;
      const slot = this.slots[item.slot];
      if (!slot || slot.cancelled) continue;
      if (slot.phase === 'prefill') {
        slot.prefilled += item.tokens.length;
        if (!item.wantLogits) continue;
        slot.phase = 'decode';
        slot.prefillDoneAt = now;
        this.prefillOrder.splice(this.prefillOrder.indexOf(slot.seq), 1);
        out.push({ kind: 'started', ref: slot.ref, queueMs: Math.max(0, slot.firstBatchAt - slot.req.enqueuedAt) });
      }
      const token = sampled[i]!;
      this.acceptToken(slot, token, now, out);
    }
    return out;
  }

  /** Release every slot (shutdown); their requests end as cancelled. */
  drain(now: number): Emission<R>[] {
    const out: Emission<R>[] = [];
    for (const slot of this.slots) if (slot) out.push(this.finish(slot, 'cancelled', now));
    return out;
  }

  private acceptToken(slot: Slot<R>, token: number, now: number, out: Emission<R>[]): void {
    if (slot.firstTokenAt < 0) slot.firstTokenAt = now;
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
    const contextFull = slot.prompt.length + slot.generated >= this.opts.contextSize;
    if (slot.generated >= s.maxTokens || contextFull) {
      this.emitText(slot, slot.text.flush(), 0, out, true);
      out.push(this.finish(slot, 'length', now));
    }
  }

  /** Runs text through the stop matcher; returns true when a stop sequence ended the request. */
  private emitText(slot: Slot<R>, text: string, tokens: number, out: Emission<R>[], final: boolean): boolean {
    const r = slot.stop.push(text);
    let emit = r.emit;
    if (final && !r.stopped) emit += slot.stop.flush();
    if (emit.length > 0 || tokens > 0) out.push({ kind: 'text', ref: slot.ref, text: emit, tokens });
    return r.stopped;
  }

  private finish(slot: Slot<R>, reason: FinishReason, now: number): Emission<R> {
    this.slots[slot.seq] = null;
    this.byId.delete(slot.id);
    const pi = this.prefillOrder.indexOf(slot.seq);
    if (pi !== -1) this.prefillOrder.splice(pi, 1);
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
        promptTokens: slot.prompt.length,
        completionTokens: slot.generated,
        queueMs: Math.max(0, firstBatch - slot.req.enqueuedAt),
        prefillMs: Math.max(0, prefillDone - firstBatch),
        decodeMs: Math.max(0, now - prefillDone),
        ttftMs: slot.firstTokenAt < 0 ? -1 : Math.max(0, slot.firstTokenAt - slot.req.enqueuedAt),
      },
    };
  }
}
