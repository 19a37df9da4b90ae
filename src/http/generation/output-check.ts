/**
 * A TokenSink stage for constrained output: collects each choice's text and, when the choice ends,
 * checks it against the request's schema (ajv) and counts the outcome. A choice the token limit
 * cut before its grammar ended is `truncated` (the client sees finish_reason "length"); one that
 * ended and still fails its schema is `invalid` — the grammar should make that impossible, so the
 * counter is the alarm.
 */
import type { TokenSink } from '../../generation/contract.js';
import { checkOutput, type OutputCheckSpec } from '../../generation/structured-output.js';
import type { Metrics } from '../../metrics.js';

export function outputCheckSink(inner: TokenSink, check: OutputCheckSpec, choices: number, metrics: Metrics): TokenSink {
  const texts: string[] = Array.from({ length: choices }, () => '');
  return {
    onStart: (meta) => inner.onStart(meta),
    onText(choice, text, logprobs) {
      texts[choice] += text;
      inner.onText(choice, text, logprobs);
    },
    onChoiceEnd(choice, reason, completionTokens) {
      if (reason === 'length') metrics.structuredOutputs.inc({ outcome: 'truncated' });
      else if (reason === 'stop') metrics.structuredOutputs.inc({ outcome: checkOutput(check, texts[choice]!).valid ? 'valid' : 'invalid' });
      inner.onChoiceEnd(choice, reason, completionTokens);
    },
    onEnd: (usage) => inner.onEnd(usage),
    onError: (err) => inner.onError(err),
  };
}
