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
  /** An assistant turn's tool calls (arguments: JSON text). */
  toolCalls?: { id: string; name: string; arguments: string }[];
  /** A tool turn: the call it answers. */
  toolCallId?: string;
}

/** A function the model may call, as the request declared it. */
export interface ChatTemplateTool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters?: unknown;
}

export interface SpecialTokenStrings {
  /** The BOS token's text (e.g. `<s>`), or '' when the vocabulary has none. */
  bosToken: string;
  /** The EOS token's text, or '' when the vocabulary has none. */
  eosToken: string;
}

export type ChatTemplateRenderer = (messages: ChatTemplateMessage[], special: SpecialTokenStrings, tools?: ChatTemplateTool[]) => string;

/**
 * Compile once; render per request. `source` undefined or blank means the model ships no
 * template: a ChatML-like rendering is used instead (`<|im_start|>role\ncontent<|im_end|>\n`, then
 * the open assistant turn), because it is the most common convention and needs no special
 * tokens to exist in the vocabulary to be readable text.
 */
export function compileChatTemplate(source: string | undefined): ChatTemplateRenderer {
  if (source === undefined || source.trim() === '') return (messages, _special, tools) => renderChatMLFallback(withToolPreamble(messages, tools));
  let template: Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new InferFluxError('internal_error', `The model's chat template cannot be parsed: ${messageOf(err)}`, { cause: err });
  }
  // Templates written for tools read `tools` and each message's `tool_calls`; others get the preamble.
  const knowsTools = /\btools\b/.test(source) && /tool_calls/.test(source);
  return (messages, special, tools) => {
    const ms = knowsTools ? messages : withToolPreamble(messages, tools);
    try {
      return template.render({
        messages: ms.map(toTemplateMessage),
        ...(knowsTools && tools && tools.length > 0 ? { tools: tools.map(toTemplateTool) } : {}),
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

/** Hugging Face's message shape for templates: `tool_calls` with parsed arguments, `tool_call_id`. */
function toTemplateMessage(m: ChatTemplateMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.name !== undefined) out.name = m.name;
  if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  if (m.toolCalls && m.toolCalls.length > 0) {
    out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: parseArguments(c.arguments) } }));
  }
  return out;
}

function toTemplateTool(t: ChatTemplateTool): Record<string, unknown> {
  return { type: 'function', function: { name: t.name, description: t.description ?? '', parameters: t.parameters ?? { type: 'object', properties: {} } } };
}

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * For templates that know nothing of tools (the documented preamble, README "Tools"): the tool
 * list and InferFlux's call format go into the system message, earlier calls become
 * `<tool_call>{"name": ..., "arguments": ...}</tool_call>` lines of their assistant turn, and tool
 * results become `<tool_response>` user turns (so any template that takes system/user/assistant
 * renders them). The format is Hermes', which the output parser reads back.
 */
export function withToolPreamble(messages: ChatTemplateMessage[], tools: ChatTemplateTool[] | undefined): ChatTemplateMessage[] {
  const hasToolTurns = messages.some((m) => m.role === 'tool' || (m.toolCalls?.length ?? 0) > 0);
  if ((!tools || tools.length === 0) && !hasToolTurns) return messages;
  const out: ChatTemplateMessage[] = [];
  if (tools && tools.length > 0) {
    const list = tools.map((t) => JSON.stringify({ name: t.name, description: t.description ?? '', parameters: t.parameters ?? { type: 'object', properties: {} } })).join('\n');
    const preamble =
      'You can call these functions. To call one, answer with only\n<tool_call>\n{"name": <function name>, "arguments": <arguments object>}\n</tool_call>\n' +
      `(one block per call). Functions:\n<tools>\n${list}\n</tools>`;
    const first = messages[0];
    if (first && (first.role === 'system' || first.role === 'developer')) {
      out.push({ ...first, content: `${first.content}\n\n${preamble}` });
      messages = messages.slice(1);
    } else out.push({ role: 'system', content: preamble });
  }
  for (const m of messages) {
    if (m.role === 'tool') {
      out.push({ role: 'user', content: `<tool_response>\n${m.content}\n</tool_response>` });
    } else if (m.toolCalls && m.toolCalls.length > 0) {
      const calls = m.toolCalls.map((c) => `<tool_call>\n{"name": ${JSON.stringify(c.name)}, "arguments": ${c.arguments}}\n</tool_call>`).join('\n');
      out.push({ role: m.role, content: m.content === '' ? calls : `${m.content}\n${calls}` });
    } else out.push(m);
  }
  return out;
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
