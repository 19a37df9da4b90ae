/**
 * Anthropic's tool fields onto the shared tool machinery: `tools` (`{name, description,
 * input_schema}`) and `tool_choice` (`auto`, `any`, `tool` with a name, `none`; `any` and `tool`
 * are OpenAI's `required` and named choice, grammar-constrained) onto the tool plan; `tool_use`
 * blocks of assistant turns onto their calls and `tool_result` blocks of user turns onto tool
 * turns, so the chat template renders them as it renders OpenAI's.
 */
import { InferFluxError } from '../../../errors.js';
import type { ChatMessage, ToolCall } from '../../../generation/contract.js';
import type { Metrics } from '../../../metrics.js';
import { planTools, type ToolChoiceKind, type ToolPlan } from '../../generation/tool-plan.js';
import type { AnthropicMessage, AnthropicToolChoice, ContentBlock, CountTokensRequest } from './schema.js';

function refuse(param: string, why: string): never {
  throw new InferFluxError('invalid_request', `'${param}' is not supported: ${why}`, { param });
}

function missing(param: string): never {
  throw new InferFluxError('invalid_request', `Missing required parameter: '${param}'.`, { param });
}

function choiceOf(c: AnthropicToolChoice | undefined): ToolChoiceKind | undefined {
  if (c === undefined) return undefined;
  if (c.type === 'any') return 'required';
  if (c.type === 'tool') return { name: c.name ?? missing('tool_choice.name') };
  return c.type;
}

export function anthropicToolPlan(body: CountTokensRequest, metrics: Metrics): ToolPlan {
  const tools = (body.tools ?? []).map((t, i) => {
    // Server tools (web search, code execution, bash...) run on Anthropic's side; there is nothing here to run them.
    if (t.type !== undefined && t.type !== 'custom') refuse(`tools[${i}].type`, `'${t.type}' is a server tool; only client tools (name, description, input_schema) are served.`);
    if (t.input_schema === undefined) missing(`tools[${i}].input_schema`);
    return { name: t.name, description: t.description, parameters: t.input_schema, namePath: `tools[${i}].name`, parametersPath: `tools[${i}].input_schema` };
  });
  return planTools(
    {
      tools,
      choice: choiceOf(body.tool_choice),
      choicePath: 'tool_choice',
      parallel: body.tool_choice?.disable_parallel_tool_use !== true,
      otherConstraint: null,
    },
    metrics,
  );
}

/** A `tool_result`'s content: a string or text blocks; a failed call's output is marked as an error. */
function resultText(b: ContentBlock, at: string): string {
  const c = b.content ?? '';
  const text = typeof c === 'string' ? c : c.map((p, k) => (p.type === 'text' ? (p.text ?? '') : refuse(`${at}.content[${k}].type`, `'${p.type}' tool results are not supported (only text).`))).join('');
  // Chat templates have no error flag on tool turns; the model reads it in the text.
  return b.is_error === true ? `Error: ${text}` : text;
}

/**
 * One Anthropic turn as chat messages: an assistant turn's text and `tool_use` blocks become one
 * assistant message with calls; a user turn's `tool_result` blocks become tool messages (in
 * order), its text one user message after them. Any other block is refused by its path.
 */
export function turnMessages(m: AnthropicMessage, at: string, textOf: (b: ContentBlock, path: string) => string): ChatMessage[] {
  if (typeof m.content === 'string') return [{ role: m.role, content: m.content }];
  let text = '';
  const calls: ToolCall[] = [];
  const out: ChatMessage[] = [];
  m.content.forEach((b, j) => {
    const path = `${at}[${j}]`;
    if (b.type === 'tool_use') {
      if (m.role !== 'assistant') refuse(`${path}.type`, "'tool_use' blocks belong to assistant turns.");
      calls.push({ id: b.id ?? missing(`${path}.id`), name: b.name ?? missing(`${path}.name`), arguments: JSON.stringify(b.input ?? missing(`${path}.input`)) });
    } else if (b.type === 'tool_result') {
      if (m.role !== 'user') refuse(`${path}.type`, "'tool_result' blocks belong to user turns.");
      out.push({ role: 'tool', content: resultText(b, path), toolCallId: b.tool_use_id ?? missing(`${path}.tool_use_id`) });
    } else text += textOf(b, path);
  });
  if (calls.length > 0) out.push({ role: 'assistant', content: text, toolCalls: calls });
  else if (text !== '' || out.length === 0) out.push({ role: m.role, content: text });
  return out;
}
