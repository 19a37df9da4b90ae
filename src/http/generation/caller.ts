/**
 * What the policy pipeline decided about the caller, carried into a generation: key id, tenant,
 * default priority, traceparent and route on the `GenerateInput` (audit lines, fairness), and a sink wrapper that
 * charges the tokens the generation used to the caller's tokens-per-minute buckets (prompt tokens
 * when known, completion tokens at the end).
 */
import type { GenerateInput, TokenSink } from '../../generation/contract.js';
import type { Exchange } from '../exchange.js';

export function withCaller(ex: Exchange, input: GenerateInput): GenerateInput {
  const p = ex.principal;
  const traceparent = input.traceparent ?? (ex.traceparent || undefined);
  const route = input.route ?? ex.route;
  if (!p) return { ...input, traceparent, route };
  return { ...input, keyId: input.keyId ?? p.id, tenant: input.tenant ?? p.tenant, priority: input.priority ?? p.priority, traceparent, route };
}

export function meteredSink(ex: Exchange, sink: TokenSink): TokenSink {
  const charge = ex.chargeTokens;
  if (!charge) return sink;
  return {
    onStart(meta) {
      charge(meta.promptTokens);
      sink.onStart(meta);
    },
    onText: (choice, text, logprobs) => sink.onText(choice, text, logprobs),
    onChoiceEnd: (choice, reason, completionTokens) => sink.onChoiceEnd(choice, reason, completionTokens),
    onEnd(usage) {
      charge(usage.completionTokens);
      sink.onEnd(usage);
    },
    onError: (err) => sink.onError(err),
  };
}
