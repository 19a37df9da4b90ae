/**
 * Prefix cache administration. Warming runs the prefix through the engine once (one generated
 * token, greedy): its KV then stays in a sequence, and moves to the host page pool / disk tier
 * when that sequence is needed for something else, so the next request with that prefix skips
 * its prefill. Flushing drops every tier, including what idle sequences hold.
 */
import { randomUUID } from 'node:crypto';
import type { HttpResponse } from 'uWebSockets.js';
import type { CacheControl, GenerateInput, Usage } from '../../../generation/contract.js';
import { InferFluxError } from '../../../errors.js';
import { samplingWith } from '../../../runtime/sampling.js';
import { auditAdmin } from '../../admin-audit.js';
import { readJsonBody } from '../../body.js';
import { sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { toChatMessage } from '../openai-chat/schema.js';
import type { CacheAction } from './schema.js';

export function getCache(deps: HttpDeps, cache: CacheControl) {
  return async (res: HttpResponse): Promise<void> => {
    const workers = await cache.status();
    sendJson(res, 200, { object: 'cache.status', models: deps.gateway.models().map((m) => m.id), workers });
  };
}

export function postCache(deps: HttpDeps, cache: CacheControl, validate: Validator<CacheAction>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    if (body.action === 'flush') {
      const removed = await cache.flush();
      auditAdmin(deps.audit, ctx, { status: 200, decision: 'cache.flush' });
      return sendJson(res, 200, { object: 'cache.flush', removed_snapshots: removed });
    }
    if ((body.prompt === undefined) === (body.messages === undefined)) {
      throw new InferFluxError('invalid_request', 'warm needs exactly one of prompt or messages.', { param: 'prompt' });
    }
    const usage = await warm(deps, ctx, body);
    auditAdmin(deps.audit, ctx, { status: 200, decision: 'cache.warm' });
    sendJson(res, 200, { object: 'cache.warm', model: usage.model, prompt_tokens: usage.promptTokens, cached_tokens: usage.cachedTokens });
  };
}

function warm(deps: HttpDeps, ctx: RequestContext, body: CacheAction): Promise<Usage & { model: string }> {
  const input: GenerateInput = {
    requestId: `warm-${randomUUID()}`,
    model: body.model,
    prompt: body.messages ? { kind: 'chat', messages: body.messages.map(toChatMessage) } : { kind: 'text', text: body.prompt! },
    n: 1,
    keyId: ctx.principal.id,
    tenant: ctx.principal.tenant,
    params: samplingWith({ maxTokens: 1, temperature: 0, seed: 0, ignoreEos: true }),
  };
  return new Promise((resolve, reject) => {
    let model = '';
    // One greedy token: finishes in a step after the prefill, so it runs to the end even if the
    // admin client leaves (the KV it leaves behind is the point).
    deps.gateway.generate(input, {
      onStart: (m) => (model = m.model),
      onText: () => undefined,
      onChoiceEnd: () => undefined,
      onEnd: (u) => resolve({ ...u, model }),
      onError: reject,
    });
  });
}

