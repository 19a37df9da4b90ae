/**
 * A request's model name at the edge: a served model, or a preset over one (`POST /api/create`,
 * runtime/models/preset-store.ts). Served models win: a preset is looked up only for a name no
 * served model has. Routes that honour presets (Ollama's chat and generate, OpenAI's chat,
 * completions and Responses, LM Studio's alias, Anthropic's Messages) resolve the name here, run on
 * `model`, and put the preset's system prompt, messages and parameters under the request's own.
 */
import { InferFluxError } from '../../errors.js';
import type { ChatMessage, Gateway } from '../../generation/contract.js';
import { PresetStore, type ModelPreset, type PresetParameters } from '../../runtime/models/preset-store.js';
import type { SamplingFields } from '../../runtime/sampling.js';
import type { HttpDeps } from '../types.js';

export interface ResolvedModel {
  /** The served model id to run on (undefined: the default model). */
  model: string | undefined;
  preset: ModelPreset | null;
}

/** The id of the served model that answers to `name` (also as `name:latest`, Ollama's spelling), or undefined. */
export function servedId(gateway: Gateway, name: string): string | undefined {
  const models = gateway.models();
  if (models.some((m) => m.id === name)) return name;
  const bare = name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name;
  return models.some((m) => m.id === bare) ? bare : undefined;
}

export function servesName(gateway: Gateway, name: string): boolean {
  return servedId(gateway, name) !== undefined;
}

export async function resolveModelName(deps: HttpDeps, name: string | undefined): Promise<ResolvedModel> {
  if (name === undefined || name === '' || servesName(deps.gateway, name)) return { model: name, preset: null };
  const preset = await new PresetStore(deps.config.server.modelsDir).get(name);
  if (!preset) return { model: name, preset: null };
  if (!servesName(deps.gateway, preset.from)) {
    // Its base was unloaded (or not loaded at this start): say so, rather than name a model the client never sent.
    throw new InferFluxError('model_not_found', `The model '${name}' was created from '${preset.from}', which this server does not serve now; load it again (POST /v1/admin/models) or delete '${name}'.`, { param: 'model' });
  }
  return { model: preset.from, preset };
}

/**
 * The preset's conversation around the request's: the request's leading system messages, else the
 * preset's system prompt; then the preset's messages; then the rest of the request's.
 */
export function withPresetMessages(preset: ModelPreset | null, messages: ChatMessage[]): ChatMessage[] {
  if (!preset) return messages;
  let lead = 0;
  while (lead < messages.length && (messages[lead]!.role === 'system' || messages[lead]!.role === 'developer')) lead++;
  const system: ChatMessage[] = lead > 0 ? messages.slice(0, lead) : preset.system !== null ? [{ role: 'system', content: preset.system }] : [];
  return [...system, ...preset.messages.map((m) => ({ role: m.role, content: m.content })), ...messages.slice(lead)];
}

/** Modelfile PARAMETERs as sampling fields (for protocols whose own field names differ from Ollama's). */
export function presetSampling(p: PresetParameters | undefined): SamplingFields {
  if (!p) return {};
  return {
    maxTokens: p.num_predict === undefined || p.num_predict < 0 ? undefined : p.num_predict,
    temperature: p.temperature,
    topP: p.top_p,
    topK: p.top_k,
    minP: p.min_p,
    seed: p.seed === undefined || p.seed === -1 ? undefined : p.seed,
    stop: p.stop,
    repeatPenalty: p.repeat_penalty,
    presencePenalty: p.presence_penalty,
    frequencyPenalty: p.frequency_penalty,
  };
}
