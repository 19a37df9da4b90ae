/**
 * Runs one embeddings request for any wire protocol: the caller from the policy pipeline (audit
 * line), guardrails on the inputs (as on a prompt: a denial is 400 `guardrail_denied` with its
 * audit line, PII redaction changes what is embedded, token-array input is refused while
 * guardrails are on because it cannot be read), the embedding pool through the facade, a request
 * still waiting for a worker dropped when its client leaves, and the tokens charged to the
 * caller's tokens-per-minute buckets. The route renders the result in its protocol's shape.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { EmbedInput, EmbedItem, EmbedOutput } from '../../generation/contract.js';
import { denialAuditEvent, guardrailDenied } from '../../policy/guardrails/guardrail-engine.js';
import { exchangeOf, onAbort } from '../exchange.js';
import type { HttpDeps } from '../types.js';

export type EmbedRequest = Omit<EmbedInput, 'keyId' | 'tenant' | 'traceparent' | 'route'>;

export async function runEmbedding(res: HttpResponse, deps: HttpDeps, req: EmbedRequest): Promise<EmbedOutput> {
  const ex = exchangeOf(res);
  const p = ex.principal;
  const input: EmbedInput = { ...req, keyId: p?.id, tenant: p?.tenant, traceparent: ex.traceparent || undefined, route: ex.route };
  ex.model = input.model ?? ex.model;
  const guarded = await checkInputs(deps, input);
  const abort = new AbortController();
  onAbort(res, () => abort.abort());
  const out = await deps.gateway.embed(guarded, abort.signal);
  ex.model = out.model;
  ex.chargeTokens?.(out.promptTokens);
  return out;
}

async function checkInputs(deps: HttpDeps, input: EmbedInput): Promise<EmbedInput> {
  const guard = deps.guardrails;
  if (!guard?.active || input.inputs.length === 0) return input;
  const tokens = input.inputs.find((i): i is { tokens: number[] } => 'tokens' in i);
  // One verdict for the whole request: the inputs are checked together, as one prompt's messages.
  const prompt = tokens
    ? { kind: 'tokens' as const, tokens: tokens.tokens }
    : { kind: 'chat' as const, messages: input.inputs.map((i) => ({ role: 'user' as const, content: (i as { text: string }).text })) };
  const ctx = { requestId: input.requestId, prompt, model: input.model, tenant: input.tenant, keyId: input.keyId, route: input.route ?? '' };
  const v = await guard.checkPrompt(ctx);
  if (!v.allow) {
    deps.audit?.record(denialAuditEvent(ctx, v.reason, 'prompt', deps.config.audit.debugMode, v.detail));
    throw guardrailDenied(v.reason, v.detail);
  }
  if (v.redacted.length > 0) {
    const reason = [...new Set(v.redacted)].join(',');
    deps.console?.redaction({ stage: 'prompt', reason, request_id: input.requestId, route: ctx.route || null, model: input.model ?? null, key_id: input.keyId ?? null, tenant: input.tenant ?? null });
  }
  if (v.prompt.kind !== 'chat') return input;
  const inputs: EmbedItem[] = v.prompt.messages.map((m) => ({ text: m.content }));
  return { ...input, inputs };
}
