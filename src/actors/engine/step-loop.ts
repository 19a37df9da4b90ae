/**
 * The engine's step loop: one llama.cpp batch per step carrying every running sequence's next
 * token plus bounded prompt chunks, then one sample per sequence that wants a token. Everything
 * else that touches the context (admissions, KV loads and saves, trims) happens in
 * `betweenSteps`, never while a batch decodes on the libuv pool.
 *
 * The decisions (what goes into a step, what a sampled token means) are the engine core's
 * (core.ts); this file only sequences the native calls and sleeps when there is nothing to do.
 */
import type { BatchContext, SampledLogprobs } from '../../runtime/llama/batch-adapter.js';
import type { StepPlan } from './core.js';
import type { LlamaSlotSampler } from './sampler.js';

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
  apply(plan: StepPlan, sampled: Int32Array, logprobs: (SampledLogprobs | undefined)[]): void;
}

/** While hand-offs wait for their ring frame, the loop looks again this often (their fallback timer). */
const WAITING_RECHECK_MS = 250;

export class StepLoop {
  private wakeUp: (() => void) | null = null;
  private stopping = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly batch: BatchContext,
    private readonly driver: StepDriver,
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
    while (!this.stopping) {
      await this.driver.betweenSteps();
      const plan = this.driver.plan();
      if (plan.items.length === 0) {
        const waiting = this.driver.waiting();
        if (waiting.ready) continue;
        const timer = waiting.any ? setTimeout(() => this.wake(), WAITING_RECHECK_MS) : null;
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        if (timer) clearTimeout(timer);
        this.wakeUp = null;
        continue;
      }
      const { sampled, logprobs } = await this.decodeAndSample(plan);
      this.driver.apply(plan, sampled, logprobs);
      // Let port messages (admits, cancels) in before the next step.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private async decodeAndSample(plan: StepPlan): Promise<{ sampled: Int32Array; logprobs: (SampledLogprobs | undefined)[] }> {
    const items = plan.items;
    const logitIndexes = await this.batch.decode(items);
    const sampled = new Int32Array(items.length).fill(-1);
    const logprobs: (SampledLogprobs | undefined)[] = [];
    const draws: Promise<void>[] = [];
    for (let i = 0; i < items.length; i++) {
      const idx = logitIndexes[i]!;
      if (idx < 0) continue;
      const sampler = this.driver.samplerAt(items[i]!.slot);
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
      draws.push(
        this.batch.sample(idx, sampler.native).then((tok) => {
          sampled[i] = tok;
          sampler.record(tok);
        }),
      );
    }
    await Promise.all(draws);
    return { sampled, logprobs };
  }
}
