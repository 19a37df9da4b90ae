/**
 * Chat template rendering: a model's Jinja `tokenizer.chat_template` + OpenAI-style messages →
 * the prompt text. Pure (no model, no thread), so it is unit-testable and compiled once per model.
 *
 * Uses `@huggingface/jinja`, the same renderer node-llama-cpp uses for `JinjaTemplateChatWrapper`
 * (0.5 ms per render, notes §5). Errors carry InferFluxError codes so the tokenizer worker can send
 * them as data: a template that raises on the given messages (`raise_exception('roles must
 * alternate')`) is the request's fault; one that does not parse is the model's.
 */
import { Template } from '@huggingface/jinja';
import { InferFluxError } from '../errors.js';

export interface ChatTemplateMessage {
  role: string;
  content: string;
  name?: string;
}

export interface SpecialTokenStrings {
  /** The BOS token's text (e.g. `<s>`), or '' when the vocabulary has none. */
  bosToken: string;
  /** The EOS token's text, or '' when the vocabulary has none. */
  eosToken: string;
}

export type ChatTemplateRenderer = (messages: ChatTemplateMessage[], special: SpecialTokenStrings) => string;

/**
 * Compile once; render per request. `source` undefined or blank means the model ships no
 * template: a ChatML-like rendering is used instead (`<|im_start|>role\ncontent<|im_end|>\n`, then
 * the open assistant turn), because it is the most common convention and needs no special
 * tokens to exist in the vocabulary to be readable text.
 */
export function compileChatTemplate(source: string | undefined): ChatTemplateRenderer {
  if (source === undefined || source.trim() === '') return renderChatMLFallback;
  let template: Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new InferFluxError('internal_error', `The model's chat template cannot be parsed: ${messageOf(err)}`, { cause: err });
  }
  return (messages, special) => {
    try {
      return template.render({
        messages,
        add_generation_prompt: true,
        bos_token: special.bosToken,
        eos_token: special.eosToken,
      });
    } catch (err) {
      throw new InferFluxError('invalid_request', `The model's chat template rejected the messages: ${messageOf(err)}`, {
        param: 'messages',
        cause: err,
      });
    }
  };
}

/** One-shot convenience: compile and render. */
export function renderChatTemplate(
  source: string | undefined,
  messages: ChatTemplateMessage[],
  special: SpecialTokenStrings,
): string {
  return compileChatTemplate(source)(messages, special);
}

/** The no-template fallback (see `compileChatTemplate`). BOS is left to the tokenizer's add_bos rule. */
export function renderChatMLFallback(messages: ChatTemplateMessage[]): string {
  let out = '';
  for (const m of messages) out += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
  return out + '<|im_start|>assistant\n';
}

/**
 * Whether a rendered chat prompt needs BOS prepended: the GGUF asks for it (`add_bos_token`) and
 * the template did not already emit it (many templates start with `{{ bos_token }}`; a doubled
 * BOS shifts the model off its training distribution, and llama.cpp warns about it).
 */
export function chatNeedsBos(rendered: string, special: SpecialTokenStrings, addBos: boolean): boolean {
  return addBos && !(special.bosToken !== '' && rendered.startsWith(special.bosToken));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
