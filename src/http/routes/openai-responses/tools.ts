/**
 * The Responses API's tool fields onto the shared tool machinery: function `tools` (`{type:
 * "function", name, description, parameters, strict}`), `tool_choice` (`auto`, `none`,
 * `required`, `{type: "function", name}`; the last two grammar-constrained) and
 * `parallel_tool_calls` onto the tool plan; `function_call` input items onto an assistant turn's
 * calls and `function_call_output` items onto tool turns. Hosted tools (web search, file search,
 * code interpreter...) run on OpenAI's side and are refused by type.
 */
import { InferFluxError } from '../../../errors.js';
import type { ChatMessage } from '../../../generation/contract.js';
import type { Metrics } from '../../../metrics.js';
import { planTools, type ToolChoiceKind, type ToolPlan } from '../../generation/tool-plan.js';
import type { InputContent, InputItem, ResponsesRequest } from './schema.js';

function refuse(param: string, why: string): never {
  throw new InferFluxError('invalid_request', `'${param}' is not supported: ${why}`, { param });
}

function missing(param: string): never {
  throw new InferFluxError('invalid_request', `Missing required parameter: '${param}'.`, { param });
}

function choiceOf(c: ResponsesRequest['tool_choice']): ToolChoiceKind | undefined {
  if (c === undefined || c === null) return undefined;
  if (typeof c === 'string') return c;
  if (c.type !== 'function') refuse('tool_choice', `a '${c.type}' tool choice needs hosted tools; only function tools are served.`);
  return { name: c.name ?? missing('tool_choice.name') };
}

export function responsesToolPlan(b: ResponsesRequest, metrics: Metrics): ToolPlan {
  const tools = b.tools ?? [];
  const hosted = tools.flatMap((t, i) => (t.type === 'function' ? [] : [[i, t.type] as const]));
  if (hosted.length > 0) {
    const types = [...new Set(hosted.map(([, type]) => type))].join(', ');
    refuse(`tools[${hosted[0]![0]}].type`, `hosted tools run on OpenAI's side (${types}); only 'function' tools are served.`);
  }
  return planTools(
    {
      tools: tools.map((t, i) => ({
        name: t.name ?? missing(`tools[${i}].name`),
        description: t.description ?? undefined,
        parameters: t.parameters ?? undefined,
        namePath: `tools[${i}].name`,
        parametersPath: `tools[${i}].parameters`,
      })),
      choice: choiceOf(b.tool_choice),
      choicePath: 'tool_choice',
      parallel: b.parallel_tool_calls ?? true,
      otherConstraint: b.text?.format && b.text.format.type !== 'text' ? "'text.format'" : null,
    },
    metrics,
  );
}

/**
 * A `function_call` item: one call of the assistant turn it follows (a message and its calls are
 * one turn), or a new assistant turn.
 */
export function addFunctionCall(out: ChatMessage[], item: InputItem, at: string): void {
  const call = { id: item.call_id ?? missing(`${at}.call_id`), name: item.name ?? missing(`${at}.name`), arguments: item.arguments ?? missing(`${at}.arguments`) };
  try {
    JSON.parse(call.arguments);
  } catch {
    throw new InferFluxError('invalid_request', `'${at}.arguments' must be JSON text.`, { param: `${at}.arguments` });
  }
  const last = out.at(-1);
  if (last?.role === 'assistant') last.toolCalls = [...(last.toolCalls ?? []), call];
  else out.push({ role: 'assistant', content: '', toolCalls: [call] });
}

/** A `function_call_output` item: a tool turn answering its call (text output only). */
export function functionCallOutput(item: InputItem, at: string): ChatMessage {
  const output = item.output ?? missing(`${at}.output`);
  const text =
    typeof output === 'string'
      ? output
      : output.map((c: InputContent, j) => (c.type === 'input_text' ? (c.text ?? '') : refuse(`${at}.output[${j}].type`, `'${c.type}' output is not supported (only input_text).`))).join('');
  return { role: 'tool', content: text, toolCallId: item.call_id ?? missing(`${at}.call_id`) };
}
