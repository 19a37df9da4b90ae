/**
 * Ollama's tool fields onto the shared tool machinery, both ways. In: `tools` (`{type:
 * "function", function: {name, description, parameters}}`) onto the tool plan — Ollama has no
 * tool_choice, so tools mean auto detection (the output is read for calls in any format the
 * parser knows); assistant `tool_calls` (`{function: {name, arguments: object}}`) onto the
 * turn's calls and `role: "tool"` messages (with `tool_name`) onto tool turns. Ollama's calls
 * carry no ids, so each gets one here and a tool turn answers the next unanswered call (of its
 * `tool_name` when given), as Ollama pairs them by order. Out: ollama-common/encoder.ts.
 */
import { InferFluxError } from '../../../errors.js';
import type { ChatMessage, ToolCall } from '../../../generation/contract.js';
import type { Metrics } from '../../../metrics.js';
import { planTools, type ToolPlan } from '../../generation/tool-plan.js';
import type { OllamaChatMessage, OllamaChatRequest } from './schema.js';

function refuse(param: string, why: string): never {
  throw new InferFluxError('invalid_request', `'${param}' is not supported: ${why}`, { param });
}

export function ollamaToolPlan(body: OllamaChatRequest, metrics: Metrics): ToolPlan {
  const tools = (body.tools ?? []).map((t, i) => {
    if (t.type !== 'function') refuse(`tools[${i}].type`, `only 'function' tools exist (got '${String(t.type)}').`);
    const f = t.function;
    return { name: f.name, description: f.description, parameters: f.parameters, namePath: `tools[${i}].function.name`, parametersPath: `tools[${i}].function.parameters` };
  });
  return planTools({ tools, choice: undefined, choicePath: 'tools', parallel: true, otherConstraint: null }, metrics);
}

/** Ollama's messages as chat messages, calls and results paired (see the header). */
export function ollamaMessages(messages: OllamaChatMessage[]): ChatMessage[] {
  let pending: ToolCall[] = [];
  return messages.map((m, i): ChatMessage => {
    const calls = m.tool_calls ?? [];
    if (calls.length > 0) {
      if (m.role !== 'assistant') refuse(`messages[${i}].tool_calls`, 'only assistant messages carry tool calls.');
      pending = calls.map((c, k) => ({ id: `call_${i}_${k}`, name: c.function.name, arguments: JSON.stringify(c.function.arguments) }));
      return { role: 'assistant', content: m.content ?? '', toolCalls: pending };
    }
    if (m.role !== 'tool') {
      if (m.tool_name !== undefined) refuse(`messages[${i}].tool_name`, "only 'tool' messages name a tool.");
      return { role: m.role, content: m.content ?? '' };
    }
    const at = m.tool_name === undefined ? 0 : Math.max(0, pending.findIndex((c) => c.name === m.tool_name));
    const answered = pending[at];
    pending = pending.filter((_, k) => k !== at);
    const out: ChatMessage = { role: 'tool', content: m.content ?? '' };
    if (m.tool_name !== undefined) out.name = m.tool_name;
    if (answered) out.toolCallId = answered.id;
    return out;
  });
}

