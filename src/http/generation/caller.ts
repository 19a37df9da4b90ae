/**
 * What the policy pipeline decided about the caller, carried into a generation: key id, tenant,
 * default priority, traceparent and route on the `GenerateInput` (audit lines, fairness), and a sink wrapper that
 * charges the tokens the generation used to the caller's tokens-per-minute buckets (prompt tokens
 * when known, completion tokens at the end).
 */
import { performance } from 'node:perf_hooks';
import type { GenerateInput, TokenSink } from '../../generation/contract.js';
import type { Exchange } from '../exchange.js';

export function withCaller(ex: Exchange, input: GenerateInput): GenerateInput {
  const p = ex.principal;
  const traceparent = input.traceparent ?? (ex.traceparent || undefined);
  const route = input.route ?? ex.route;
  if (!p) return { ...input, traceparent, route };
  return { ...input, keyId: input.keyId ?? p.id, tenant: input.tenant ?? p.tenant, priority: input.priority ?? p.priority, traceparent, route };
}

/**
 * Also notes the token counts and the first text's time on the exchange (access log, console) and marks the generation's stages on
 * the request's trace: the first choice starting on an engine ends the queue wait, the first text
 * ends the prefill, the end ends the decode.
 */
export function meteredSink(ex: Exchange, sink: TokenSink): TokenSink {
  const charge = ex.chargeTokens;
  ex.trace?.mark('queued');
  let firstText = true;
  return {
    onStart(meta) {
      charge?.(meta.promptTokens);
      ex.tokensIn = meta.promptTokens;
      ex.trace?.mark('started');
      if (meta.tokenizeMs !== undefined) ex.trace?.tokenized(meta.tokenizeMs);
      sink.onStart(meta);
    },
    onText: (choice, text, logprobs) => {
      if (firstText) {
        firstText = false;
        ex.firstTextAt = performance.now();
        ex.trace?.mark('first_token');
      }
      sink.onText(choice, text, logprobs);
    },
    onChoiceEnd: (choice, reason, completionTokens) => sink.onChoiceEnd(choice, reason, completionTokens),
    onEnd(usage) {
      charge?.(usage.completionTokens);
      ex.tokensIn = usage.promptTokens;
      ex.tokensOut = usage.completionTokens;
      ex.trace?.mark('ended', usage.timings);
      sink.onEnd(usage);
    },
    onError: (err) => sink.onError(err),
  };
}
