/**
 * The engine's step loop: one llama.cpp batch per step carrying every running sequence's next
 * token plus bounded prompt chunks, then one sample per sequence that wants a token. Everything
 * else that touches the context (admissions, KV loads and saves, trims) happens in
 * `betweenSteps`, never while a batch decodes on the libuv pool.
 *
 * The decisions (what goes into a step, what a sampled token means) are the engine core's
 * (core.ts); this file only sequences the native calls and sleeps when there is nothing to do.
 */
import { performance } from 'node:perf_hooks';
import type { BatchContext, SampledLogprobs } from '../../runtime/llama/batch-adapter.js';
import type { CoreClaims } from '../core-budget.js';
import type { StepTiming } from '../protocol.js';
import type { PlannedItem, StepPlan } from './core.js';
import type { LlamaSlotSampler } from './sampler.js';
import type { DraftRequest, Speculator } from './speculator.js';

export interface StepDriver {
  /** Cancels, suspensions, flushes, admissions: the native work that must not overlap a batch. */
  betweenSteps(): Promise<void>;
  plan(): StepPlan;
  /** Admissions waiting: `ready` ones can run now; others (hand-offs) become ready by themselves. */
  waiting(): { ready: boolean; any: boolean };
  samplerAt(slot: number): LlamaSlotSampler;
  /**
   * The step's sampled token per plan item (-1 where none was drawn), and its log probabilities
   * where the request asked for them.
   */
  apply(plan: StepPlan, sampled: Int32Array, logprobs: (SampledLogprobs | undefined)[], more: (number[] | undefined)[]): void;
  /**
   * Post what `apply` produced. The loop calls it right after the next batch has gone to the
   * libuv pool (or before it waits for work), so messaging overlaps the native decode.
   */
  flush(): void;
  /** Speculative decoding: what to ask the draft for this decode item, or null to decode it normally. */
  draftFor?(item: PlannedItem, chunkSize: number): DraftRequest | null;
  /** KV cells of a sequence that hold accepted tokens after `apply` (the rest is trimmed). */
  validCells?(seq: number): number;
  /** Nothing to run or waiting: work that would otherwise sit on the next request's path; true if it did any. */
  whileIdle?(): Promise<boolean>;
}

/** While hand-offs wait for their ring frame, the loop looks again this often (their fallback timer). */
const WAITING_RECHECK_MS = 250;

export class StepLoop {
  private wakeUp: (() => void) | null = null;
  private stopping = false;
  private done: Promise<void> = Promise.resolve();
  /** When the current step's batch finished decoding (see StepTiming). */
  private decodedAt = 0;
  /** Where the loop's time went since start (StepTiming in protocol.ts says what each part is). */
  readonly timing: StepTiming = { steps: 0, decodeMs: 0, sampleMs: 0, applyMs: 0, betweenMs: 0 };

  constructor(
    private readonly batch: BatchContext,
    private readonly driver: StepDriver,
    /** Draft model for speculative decoding, or null. */
    private readonly speculator: Speculator | null = null,
    /** The process's shared cores: each decode claims its threads there (core-budget.ts); null = fixed threads. */
    private readonly cores: CoreClaims | null = null,
  ) {}

  start(): void {
    this.done = this.run();
  }

  /** Something arrived (an admission, a cancel, a ring frame): run a step soon if idle. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Finishes the current step and returns; no step starts after this. */
  stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    return this.done;
  }

  private async run(): Promise<void> {
    const t = this.timing;
    while (!this.stopping) {
      const t0 = performance.now();
      await this.driver.betweenSteps();
      const plan = this.driver.plan();
      if (plan.items.length === 0) {
        this.driver.flush();
        const waiting = this.driver.waiting();
        if (waiting.ready) continue;
        this.cores?.idle();
        // Then look for work again: a request may have arrived meanwhile.
        if (!waiting.any && !this.stopping && (await this.driver.whileIdle?.())) continue;
        const timer = waiting.any ? setTimeout(() => this.wake(), WAITING_RECHECK_MS) : null;
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        if (timer) clearTimeout(timer);
        this.wakeUp = null;
        continue;
      }
      const t1 = performance.now();
      // The draft decodes first: what the last step produced goes out before it, not after.
      if (this.speculator) this.driver.flush();
      const proposals = this.speculator ? await this.withCores(0, () => this.propose(plan, this.speculator!)) : null;
      const { sampled, logprobs, more } = await this.decodeAndSample(plan, proposals);
      const t3 = performance.now();
      this.driver.apply(plan, sampled, logprobs, more);
      if (proposals) this.trimRejected(plan);
      const t4 = performance.now();
      t.steps++;
      t.betweenMs += t1 - t0;
      t.decodeMs += this.decodedAt - t1;
      t.sampleMs += t3 - this.decodedAt;
      t.applyMs += t4 - t3;
      // Let port messages (admits, cancels) in before the next step.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Draft proposals for the decode items that may speculate, appended to their tokens (pending
   * token first) with logits at every position, inside the batch's spare room. Returns the
   * proposals per plan item.
   */
  private async propose(plan: StepPlan, speculator: Speculator): Promise<(number[] | undefined)[] | null> {
    const asks: DraftRequest[] = [];
    const at: number[] = [];
    let room = this.batch.context.batchSize - plan.tokens;
    for (let i = 0; i < plan.items.length && room > 0; i++) {
      const ask = this.driver.draftFor?.(plan.items[i]!, Math.min(speculator.opts.chunkSize, room)) ?? null;
      if (!ask) continue;
      asks.push(ask);
      at.push(i);
      room -= ask.want;
    }
    if (asks.length === 0) return null;
    const drafted = await speculator.propose(asks);
    const out: (number[] | undefined)[] = [];
    for (let k = 0; k < at.length; k++) {
      const props = drafted[k]!.slice(0, asks[k]!.want);
      if (props.length === 0) continue;
      const item = plan.items[at[k]!]!;
      item.tokens = Uint32Array.of(item.tokens[0]!, ...props);
      item.allLogits = true;
      plan.tokens += props.length;
      out[at[k]!] = props;
    }
    return out;
  }

  /** Runs native work on threads claimed from the shared cores (0 = fixed threads, no budget). */
  private async withCores<T>(tokens: number, work: (threads: number) => Promise<T>): Promise<T> {
    if (!this.cores) return work(0);
    const threads = await this.cores.acquire(tokens);
    try {
      return await work(threads);
    } finally {
      this.cores.release(threads);
    }
  }

  /** Drop the target's KV cells past what the core accepted (rejected proposals). */
  private trimRejected(plan: StepPlan): void {
    for (const item of plan.items) {
      if (!item.allLogits) continue;
      const valid = this.driver.validCells?.(item.sequenceId) ?? item.position + 1;
      if (valid < item.position + item.tokens.length) this.batch.trimSequence(item.sequenceId, valid);
    }
  }

  private async decodeAndSample(
    plan: StepPlan,
    proposals: (number[] | undefined)[] | null,
  ): Promise<{ sampled: Int32Array; logprobs: (SampledLogprobs | undefined)[]; more: (number[] | undefined)[] }> {
    const items = plan.items;
    const all: (Uint32Array | undefined)[] = [];
    const logitIndexes = await this.withCores(plan.tokens, (threads) => {
      if (threads > 0) this.batch.setThreads(threads);
      const decoding = this.batch.decode(items, all);
      // The batch is queued on the libuv pool (decode's synchronous part ends there): the last
      // step's tokens go out while llama.cpp evaluates this one.
      this.driver.flush();
      return decoding;
    });
    this.decodedAt = performance.now();
    const sampled = new Int32Array(items.length).fill(-1);
    const logprobs: (SampledLogprobs | undefined)[] = [];
    const more: (number[] | undefined)[] = [];
    const draws: Promise<void>[] = [];
    const plain: Promise<number>[] = [];
    const plainAt: number[] = [];
    const plainSamplers: LlamaSlotSampler[] = [];
    // Greedy-only samplers first, drawn on this thread before any native sample is in flight.
    for (let i = 0; i < items.length; i++) {
      const idx = logitIndexes[i]!;
      if (idx < 0 || proposals?.[i]) continue;
      const sampler = this.driver.samplerAt(items[i]!.slot);
      if (sampler.greedyBan === null) continue;
      const token = this.batch.sampleGreedy(idx, sampler.greedyBan);
      if (token < 0) break;
      sampled[i] = token;
      sampler.record(token);
    }
    for (let i = 0; i < items.length; i++) {
      const idx = logitIndexes[i]!;
      if (idx < 0 || sampled[i]! >= 0) continue;
      const sampler = this.driver.samplerAt(items[i]!.slot);
      const props = proposals?.[i];
      const positions = all[i];
      if (props && positions) {
        // Greedy verification: the target's token after the pending one, then after each proposal
        // as long as the proposal before it was exactly the target's own choice.
        draws.push(
          (async () => {
            let t = await this.batch.sample(positions[0]!, sampler.native);
            sampled[i] = t;
            const extra: number[] = [];
            for (let j = 0; j < props.length && t === props[j]; j++) {
              t = await this.batch.sample(positions[j + 1]!, sampler.native);
              extra.push(t);
            }
            more[i] = extra;
          })(),
        );
        continue;
      }
      if (sampler.logprobs !== null) {
        draws.push(
          this.batch.sampleWithLogprobs(idx, sampler.native, sampler.logprobs).then((r) => {
            sampled[i] = r.token;
            logprobs[i] = r;
            sampler.record(r.token);
          }),
        );
        continue;
      }
      // The common case: the native promise as it is (no closure or derived promise per token);
      // its token is stored once every draw of the step is in.
      plain.push(this.batch.sample(idx, sampler.native));
      plainAt.push(i);
      plainSamplers.push(sampler);
    }
    const [tokens] = await Promise.all([Promise.all(plain), Promise.all(draws)]);
    for (let k = 0; k < tokens.length; k++) {
      sampled[plainAt[k]!] = tokens[k]!;
      plainSamplers[k]!.record(tokens[k]!);
    }
    return { sampled, logprobs, more };
  }
}
