/**
 * Several prompts as one generation (legacy completions' batched `prompt`): each prompt runs as
 * its own generation through the gateway, all admitted together so the scheduler batches them,
 * and their sink calls merge into one sink with OpenAI's numbering: prompt p's choice i is choice
 * `p * n + i`. Usage is summed; timings and the stop sequence are prompt 0's (choice 0's, as for
 * one prompt).
 *
 * Every prompt is tokenized and checked against the model (context, vocabulary) before any is
 * admitted, so a bad prompt is a 400 naming its index and no work starts. A failure after that
 * (a worker crash, a full queue) cancels the other prompts and ends the whole response.
 */
import { InferFluxError } from '../errors.js';
import type { Gateway, GenerateInput, GenerationHandle, StartMeta, TokenSink, Usage } from './contract.js';
import { resolveSampling } from './sampling.js';

/** Prompts one request may batch. Each gets `n` choices; with `limits.max_n` 8 that is 256 sequences, the default queue. */
export const MAX_BATCH_PROMPTS = 32;

export function generateEach(gateway: Gateway, inputs: GenerateInput[], sink: TokenSink): GenerationHandle {
  const handles: GenerationHandle[] = [];
  let cancelled = false;
  let paused = false;
  let over = false;
  const fail = (err: InferFluxError): void => {
    if (over) return;
    over = true;
    for (const h of handles) h.cancel();
    sink.onError(err);
  };

  void checkAll(gateway, inputs).then(
    (promptTokens) => {
      if (cancelled || over) return;
      const merged = mergedSinks(inputs, promptTokens, sink, fail, () => over);
      for (let p = 0; p < inputs.length && !over; p++) {
        let h: GenerationHandle;
        try {
          h = gateway.generate(inputs[p]!, merged[p]!);
        } catch (err) {
          return fail(InferFluxError.from(err));
        }
        handles.push(h);
        if (paused) h.pause();
      }
    },
    (err: unknown) => {
      if (!cancelled) fail(InferFluxError.from(err));
    },
  );

  return {
    cancel() {
      cancelled = true;
      over = true;
      for (const h of handles) h.cancel();
    },
    pause() {
      paused = true;
      for (const h of handles) h.pause();
    },
    resume() {
      paused = false;
      for (const h of handles) h.resume();
    },
  };
}

/** Each prompt's token count, or the first failing prompt's error with its index in the message and `param`. */
async function checkAll(gateway: Gateway, inputs: GenerateInput[]): Promise<number[]> {
  const outcomes = await Promise.allSettled(
    inputs.map(async (input) => {
      const tokens = await gateway.countTokens(input.model, input.prompt);
      // The same checks the gateway makes before admitting one prompt; the settings are discarded.
      resolveSampling(input.params, gateway.model(input.model), tokens, input.maxTokensField);
      return tokens;
    }),
  );
  const bad = outcomes.findIndex((o) => o.status === 'rejected');
  if (bad < 0) return outcomes.map((o) => (o as PromiseFulfilledResult<number>).value);
  const err = InferFluxError.from((outcomes[bad] as PromiseRejectedResult).reason);
  // Prompt-level errors name the prompt; others (model, max_tokens) keep their parameter.
  const param = err.param === 'prompt' || err.param === 'messages' ? `prompt[${bad}]` : err.param;
  return Promise.reject(new InferFluxError(err.code, `prompt[${bad}]: ${err.message}`, { param, retryAfter: err.retryAfter, cause: err }));
}

/** One sink per prompt, feeding `sink` in the contract's order (one start, then choices, then one end). */
function mergedSinks(inputs: GenerateInput[], promptTokens: number[], sink: TokenSink, fail: (e: InferFluxError) => void, isOver: () => boolean): TokenSink[] {
  const n = inputs[0]!.n;
  const usages: (Usage | null)[] = inputs.map(() => null);
  let started = false;
  let ended = 0;
  return inputs.map((_, p): TokenSink => ({
    onStart(meta: StartMeta) {
      if (started || isOver()) return;
      started = true;
      sink.onStart({ ...meta, promptTokens: promptTokens.reduce((a, b) => a + b, 0) });
    },
    onText: (choice, text, logprobs) => {
      if (!isOver()) sink.onText(p * n + choice, text, logprobs);
    },
    onChoiceEnd: (choice, reason, tokens) => {
      if (!isOver()) sink.onChoiceEnd(p * n + choice, reason, tokens);
    },
    onEnd(usage) {
      if (isOver()) return;
      usages[p] = usage;
      if (++ended < inputs.length) return;
      const all = usages as Usage[];
      sink.onEnd({
        promptTokens: all.reduce((a, u) => a + u.promptTokens, 0),
        completionTokens: all.reduce((a, u) => a + u.completionTokens, 0),
        cachedTokens: all.reduce((a, u) => a + u.cachedTokens, 0),
        timings: all[0]!.timings,
        stopSequence: all[0]!.stopSequence,
      });
    },
    onError: fail,
  }));
}
