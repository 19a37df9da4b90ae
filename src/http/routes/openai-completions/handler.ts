/**
 * `POST /v1/completions`: parse, validate, map to a `GenerateInput`, run it. No engine logic.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { PromptInput } from '../../../generation/contract.js';
import { InferFluxError } from '../../../errors.js';
import { readJsonBody } from '../../body.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { requestPriority, toSamplingParams } from '../openai-common/schema.js';
import { completionLogprobs, openAIEncoder, type Dialect, type Shape } from '../openai-common/encoder.js';
import { runGeneration } from '../../generation/runner.js';
import { presetSampling, resolveModelName } from '../../generation/preset.js';
import { outputConstraintOf } from '../openai-common/structured.js';
import { lmStudioExtras, lmStudioModelInfo } from '../lmstudio/encoder.js';
import type { CompletionRequest } from './schema.js';
import { MAX_BATCH_PROMPTS } from '../../../generation/fan-in.js';

/** OpenAI's (and vLLM's) default `max_tokens` for legacy completions. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

const completionShape: Shape = {
  object: 'text_completion',
  chunkObject: 'text_completion',
  idPrefix: 'cmpl-',
  textChoice: (index, text, logprobs) => ({ index, text, logprobs, finish_reason: null }),
  endChoice: (index, reason) => ({ index, text: '', logprobs: null, finish_reason: reason }),
  finalChoice: (index, text, reason, logprobs) => ({ index, text, logprobs, finish_reason: reason }),
  renderLogprobs: completionLogprobs,
};

/**
 * The request's prompts: a string, an array of strings, an array of token ids, or an array of
 * token-id arrays (OpenAI's four forms). More than one runs as a batch (generation/fan-in.ts).
 */
export function toPrompts(p: CompletionRequest['prompt']): PromptInput[] {
  if (typeof p === 'string') return [{ kind: 'text', text: p }];
  let prompts: PromptInput[];
  if (p.every((x) => typeof x === 'number')) prompts = [{ kind: 'tokens', tokens: p as number[] }];
  else if (p.every((x) => typeof x === 'string')) prompts = (p as string[]).map((text) => ({ kind: 'text', text }));
  else if (p.every((x) => Array.isArray(x))) prompts = (p as number[][]).map((tokens) => ({ kind: 'tokens', tokens }));
  else throw new InferFluxError('invalid_request', "Invalid value for 'prompt': mixes text, token ids and token arrays; send one form.", { param: 'prompt' });
  if (prompts.length > MAX_BATCH_PROMPTS) {
    throw new InferFluxError('invalid_request', `'prompt' holds ${prompts.length} prompts; at most ${MAX_BATCH_PROMPTS} per request.`, { param: 'prompt' });
  }
  return prompts;
}

export function completionHandler(deps: HttpDeps, validate: Validator<CompletionRequest>, dialect: Dialect = 'openai') {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const constraint = outputConstraintOf(body, deps.metrics);
    // LM Studio's alias adds its stats and model_info (resolving the model first: a 404 before any work).
    // A preset's parameters apply; its system prompt and messages do not (no chat template here).
    const { model, preset } = await resolveModelName(deps, body.model);
    const extras = dialect === 'lmstudio' ? lmStudioExtras(await lmStudioModelInfo(deps.gateway, model)) : undefined;
    const prompts = toPrompts(body.prompt);
    const n = body.n ?? 1;
    runGeneration(res, deps, {
      prompts: prompts.length > 1 ? prompts : null,
      outputCheck: constraint?.check ?? null,
      input: {
        requestId: ctx.requestId,
        model,
        adapter: body.adapter,
        cacheSalt: body.cache_salt,
        prompt: prompts[0]!,
        params: toSamplingParams(body, DEFAULT_COMPLETION_MAX_TOKENS, { logprobs: body.logprobs ?? null, grammar: constraint?.grammar }, presetSampling(preset?.parameters)),
        n,
        priority: requestPriority(body, ctx.priorityHeader),
      },
      stream: body.stream === true,
      encoder: openAIEncoder(completionShape, { n: n * prompts.length, includeUsage: body.stream_options?.include_usage === true, extras }),
    });
  };
}
