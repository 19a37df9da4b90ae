/**
 * A TokenSink wrapper that checks the contract's lifecycle order (generation/contract.ts):
 * `onStart` once and first, then `onText` for open choices, one `onChoiceEnd` per choice, then
 * one `onEnd` after every choice ended; or one `onError` at any point instead of the rest. Nothing
 * after the end. Violations are recorded (not thrown: a throw inside the gateway would be caught
 * there and hide itself) and the test asserts `violations` is empty.
 */
import type { TokenSink } from '../../src/generation/contract.js';

export interface CheckedSink {
  sink: TokenSink;
  violations: string[];
  /** The calls in order, e.g. `start`, `text:0`, `choiceEnd:0:stop`, `end`. */
  calls: string[];
  /** Resolves at `onEnd` or `onError`. */
  settled: Promise<'end' | 'error'>;
}

export function checkedSink(choices: number, inner: Partial<TokenSink> = {}): CheckedSink {
  const violations: string[] = [];
  const calls: string[] = [];
  let started = false;
  let finished: 'end' | 'error' | null = null;
  const ended = new Set<number>();
  let settle!: (how: 'end' | 'error') => void;
  const settled = new Promise<'end' | 'error'>((r) => (settle = r));
  const check = (what: string, ok: boolean, why: string) => {
    if (!ok) violations.push(`${what}: ${why} (after ${calls.slice(-3).join(', ') || 'nothing'})`);
  };
  const open = (what: string) => check(what, finished === null, `called after ${finished}`);
  const choice = (what: string, c: number) => check(what, Number.isInteger(c) && c >= 0 && c < choices, `choice ${c} out of range`);
  return {
    violations,
    calls,
    settled,
    sink: {
      onStart(meta) {
        open('onStart');
        check('onStart', !started, 'called twice');
        started = true;
        calls.push('start');
        inner.onStart?.(meta);
      },
      onText(c, text) {
        open('onText');
        choice('onText', c);
        check('onText', started, 'before onStart');
        check('onText', !ended.has(c), `after choice ${c} ended`);
        calls.push(`text:${c}`);
        inner.onText?.(c, text);
      },
      onChoiceEnd(c, reason, tokens) {
        open('onChoiceEnd');
        choice('onChoiceEnd', c);
        check('onChoiceEnd', started, 'before onStart');
        check('onChoiceEnd', !ended.has(c), `choice ${c} ended twice`);
        ended.add(c);
        calls.push(`choiceEnd:${c}:${reason}`);
        inner.onChoiceEnd?.(c, reason, tokens);
      },
      onEnd(usage) {
        open('onEnd');
        check('onEnd', started, 'before onStart');
        check('onEnd', ended.size === choices, `only ${ended.size} of ${choices} choices ended`);
        finished = 'end';
        calls.push('end');
        inner.onEnd?.(usage);
        settle('end');
      },
      onError(err) {
        open('onError');
        finished = 'error';
        calls.push(`error:${err.code}`);
        inner.onError?.(err);
        settle('error');
      },
    },
  };
}
