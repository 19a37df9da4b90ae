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
import { outputConstraintOf } from '../openai-common/structured.js';
import { lmStudioExtras, lmStudioModelInfo } from '../lmstudio/encoder.js';
import type { CompletionRequest } from './schema.js';

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

function toPrompt(p: CompletionRequest['prompt']): PromptInput {
  if (typeof p === 'string') return { kind: 'text', text: p };
  const strings = p.filter((x) => typeof x === 'string').length;
  if (strings === 0) return { kind: 'tokens', tokens: p as number[] };
  if (strings === 1 && p.length === 1) return { kind: 'text', text: p[0] as string };
  const why = strings === p.length ? 'batched prompts are not supported; send one prompt per request' : 'mixes text and token ids';
  throw new InferFluxError('invalid_request', `Invalid value for 'prompt': ${why}.`, { param: 'prompt' });
}

export function completionHandler(deps: HttpDeps, validate: Validator<CompletionRequest>, dialect: Dialect = 'openai') {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const body = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const constraint = outputConstraintOf(body, deps.metrics);
    // LM Studio's alias adds its stats and model_info (resolving the model first: a 404 before any work).
    const extras = dialect === 'lmstudio' ? lmStudioExtras(await lmStudioModelInfo(deps.gateway, body.model)) : undefined;
    runGeneration(res, deps, {
      outputCheck: constraint?.check ?? null,
      input: {
        requestId: ctx.requestId,
        model: body.model,
        prompt: toPrompt(body.prompt),
        params: toSamplingParams(body, DEFAULT_COMPLETION_MAX_TOKENS, { logprobs: body.logprobs ?? null, grammar: constraint?.grammar }),
        n: body.n ?? 1,
        priority: requestPriority(body, ctx.priorityHeader),
      },
      stream: body.stream === true,
      encoder: openAIEncoder(completionShape, { n: body.n ?? 1, includeUsage: body.stream_options?.include_usage === true, extras }),
    });
  };
}
