/**
 * A TokenSink decorator that runs each choice's text through an `OutputFilter` before the real
 * sink sees it. Held-back text is released at the choice's end, before its `onChoiceEnd`, so
 * streamed deltas and the final (non-stream) text carry the same redactions. On a denial the
 * wrapper calls `deny(reason)` once and passes nothing further on: the caller cancels the
 * generation and ends the response with the error.
 */
import { performance } from 'node:perf_hooks';
import type { TokenSink } from '../../generation/contract.js';
import type { PiiKind } from '../types.js';
import { OutputFilter, type FilterStep, type OutputRules } from './output-filter.js';

export interface GuardHooks {
  deny(reason: string): void;
  /** Called once when the request ends normally, with the time the filters took and what they redacted. */
  done?(seconds: number, redacted: PiiKind[]): void;
}

export function guardSink(inner: TokenSink, rules: OutputRules, choices: number, hooks: GuardHooks): TokenSink {
  const filters = Array.from({ length: choices }, () => new OutputFilter(rules));
  const redacted: PiiKind[] = [];
  let spent = 0;
  let denied = false;

  /** Runs one filter step; false when it denied (everything after that is dropped). */
  const step = (choice: number, text: string, final: boolean): boolean => {
    const t0 = performance.now();
    const filter = filters[choice];
    const r: FilterStep = filter ? filter.push(text, final) : { kind: 'emit', text, redacted: [] };
    spent += performance.now() - t0;
    if (r.kind === 'deny') {
      denied = true;
      hooks.deny(r.reason);
      return false;
    }
    redacted.push(...r.redacted);
    if (r.text !== '') inner.onText(choice, r.text);
    return true;
  };

  return {
    onStart(meta) {
      if (!denied) inner.onStart(meta);
    },
    onText(choice, text) {
      if (!denied) step(choice, text, false);
    },
    onChoiceEnd(choice, reason, completionTokens) {
      if (denied) return;
      if (step(choice, '', true)) inner.onChoiceEnd(choice, reason, completionTokens);
    },
    onEnd(usage) {
      if (denied) return;
      hooks.done?.(spent / 1000, redacted);
      inner.onEnd(usage);
    },
    onError(err) {
      if (!denied) inner.onError(err);
    },
  };
}
