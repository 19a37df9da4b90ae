/**
 * Which LoRA adapter an engine worker's context runs, and which waiting admissions may start.
 * Pure: the shell performs the swap (`BatchContext.setLoras`) and clears the sequences.
 *
 * llama.cpp applies adapters to a whole context, every sequence at once, and KV computed under
 * one adapter is wrong under another. So a context runs one adapter (or the base) at a time:
 * - admissions whose adapter is the current one start, in arrival order, up to the first one
 *   that needs another adapter. Requests behind it wait, so a stream of same-adapter requests
 *   cannot starve it;
 * - once no sequence is running (the current adapter's requests finished), the context swaps to
 *   the oldest waiting admission's adapter, between steps. The shell then forgets every idle
 *   sequence's KV, so no prefix computed under the old adapter is reused.
 * No request is dropped: a waiting one waits for the running ones to end, never for a restart.
 * The scheduler places requests on workers already running their adapter where it can
 * (scheduler/core.ts), so swaps happen when load moves between adapters, not per request.
 */
import type { AdapterRef, AdmitBody } from '../protocol.js';

export interface GateDecision<A> {
  /** Swap the context to this adapter (null = base) before admitting; undefined = no swap. */
  swap: AdapterRef | null | undefined;
  /** Admissions to start now, in order. */
  admit: A[];
}

export const keyOf = (req: AdmitBody): string => req.adapter?.key ?? '';

export class AdapterGate {
  /** Key of the adapter the context runs ('' = base). */
  current = '';
  swaps = 0;

  /**
   * `ready`: admissions whose KV is here, oldest first. `running`: sequences holding a request.
   * Does not change state; call `swapped` once the shell has swapped.
   */
  decide<A extends { req: AdmitBody }>(ready: readonly A[], running: number): GateDecision<A> {
    const head = ready[0];
    if (!head) return { swap: undefined, admit: [] };
    const want = keyOf(head.req);
    if (want !== this.current) {
      if (running > 0) return { swap: undefined, admit: [] };
      return { swap: head.req.adapter, admit: leadingRun(ready, want) };
    }
    return { swap: undefined, admit: leadingRun(ready, want) };
  }

  swapped(key: string): void {
    this.current = key;
    this.swaps++;
  }
}

function leadingRun<A extends { req: AdmitBody }>(ready: readonly A[], key: string): A[] {
  const out: A[] = [];
  for (const a of ready) {
    if (keyOf(a.req) !== key) break;
    out.push(a);
  }
  return out;
}
