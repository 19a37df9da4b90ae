/**
 * LM Studio's REST API (`/api/v0/...`) answers in OpenAI's shapes plus its own fields: `stats`
 * (tokens_per_second, time_to_first_token and generation_time in seconds, `stop_reason` in
 * LM Studio's words), `model_info` (arch, quant, format, context_length) and `runtime`. They ride
 * on the OpenAI encoder as final extras (see `FinalExtras`): on the whole body, and when
 * streamed, on one last chunk before `[DONE]`. The numbers are choice 0's, as its engine measured them.
 */
import type { FinishReason, Gateway, Usage } from '../../../generation/contract.js';
import { SERVER_VERSION } from '../../../version.js';
import type { FinalExtras } from '../openai-common/encoder.js';

/** LM Studio's stop reasons for ours. */
function stopReason(reason: FinishReason, stopSequence: string | null | undefined): string {
  if (reason === 'length') return 'maxPredictedTokensReached';
  return stopSequence ? 'stopStringFound' : 'eosFound';
}

export function lmStudioStats(usage: Usage, reason: FinishReason) {
  const t = usage.timings ?? { queueMs: 0, prefillMs: 0, decodeMs: 0 };
  const generation = t.decodeMs / 1000;
  return {
    tokens_per_second: generation > 0 ? usage.completionTokens / generation : 0,
    // Admission to the first token: queueing plus prompt evaluation.
    time_to_first_token: (t.queueMs + t.prefillMs) / 1000,
    generation_time: generation,
    stop_reason: stopReason(reason, usage.stopSequence),
  };
}

export interface LmStudioModelInfo {
  arch: string;
  quant: string;
  format: 'gguf';
  context_length: number;
}

export const RUNTIME = { name: 'inferflux-llama.cpp', version: SERVER_VERSION, supported_formats: ['gguf'] };

export async function lmStudioModelInfo(gateway: Gateway, model: string | undefined): Promise<LmStudioModelInfo> {
  const m = gateway.model(model);
  const f = await gateway.modelFile(m.id, { maxArray: 0 });
  return { arch: m.architecture, quant: f.quantization, format: 'gguf', context_length: m.contextSize };
}

export function lmStudioExtras(info: LmStudioModelInfo): FinalExtras {
  return (usage, reasons) => ({ stats: lmStudioStats(usage, reasons[0] ?? 'stop'), model_info: info, runtime: RUNTIME });
}
