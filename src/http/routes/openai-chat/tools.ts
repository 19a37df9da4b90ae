/**
 * A chat request's tools: validated before any work (each function's `parameters` must be a JSON
 * Schema the grammar compiler takes; a `tool_choice` must name a declared function), rendered
 * into the prompt by the chat template, constrained by a grammar when a call is required, and read
 * back from the output (http/generation/tool-call-sink.ts).
 */
import { InferFluxError } from '../../../errors.js';
import type { ToolSpec } from '../../../generation/contract.js';
import { compileOutputConstraint } from '../../../generation/structured-output.js';
import { toolCallGrammar } from '../../../generation/tools/tool-grammar.js';
import type { Metrics } from '../../../metrics.js';
import type { ToolCallOptions } from '../../generation/tool-call-sink.js';
import type { ChatRequest } from './schema.js';

export interface ToolPlan {
  /** Tools rendered into the prompt (undefined: none, or `tool_choice: "none"`). */
  specs: ToolSpec[] | undefined;
  /** GBNF when a call is required. */
  grammar: string | null;
  /** How the output is read for calls; null when no call can come. */
  options: ToolCallOptions | null;
}

const NONE: ToolPlan = { specs: undefined, grammar: null, options: null };

export function toolPlanOf(body: ChatRequest, metrics: Metrics): ToolPlan {
  const tools = body.tools ?? [];
  const choice = body.tool_choice ?? (tools.length > 0 ? 'auto' : 'none');
  if (tools.length === 0) {
    if (choice !== 'none' && choice !== 'auto') {
      throw new InferFluxError('invalid_request', "'tool_choice' needs 'tools' to choose from.", { param: 'tool_choice' });
    }
    return NONE;
  }
  const names = new Set<string>();
  const specs = tools.map((t, i): ToolSpec => {
    const f = t.function;
    if (names.has(f.name)) throw new InferFluxError('invalid_request', `Two tools are named '${f.name}'.`, { param: `tools[${i}].function.name` });
    names.add(f.name);
    if (f.parameters !== undefined) {
      const c = compileOutputConstraint({ kind: 'json_schema', schema: f.parameters, param: `tools[${i}].function.parameters` });
      metrics.grammarCompile.observe({ kind: 'tool_parameters' }, c.compileMs / 1000);
    }
    const spec: ToolSpec = { name: f.name };
    if (f.description !== undefined) spec.description = f.description;
    if (f.parameters !== undefined) spec.parameters = f.parameters;
    return spec;
  });
  if (choice === 'none') return NONE;
  const parallel = body.parallel_tool_calls ?? true;
  if (choice === 'auto') return { specs, grammar: null, options: { names, constrained: false, parallel } };
  const only = typeof choice === 'object' ? choice.function.name : undefined;
  if (only !== undefined && !names.has(only)) {
    throw new InferFluxError('invalid_request', `'tool_choice' names '${only}', which is not among the tools.`, { param: 'tool_choice' });
  }
  if ((body.response_format && body.response_format.type !== 'text') || (body.grammar !== undefined && body.grammar !== null)) {
    throw new InferFluxError('invalid_request', "A required tool call cannot be combined with 'response_format' or 'grammar'.", { param: 'tool_choice' });
  }
  const g = toolCallGrammar(only === undefined ? specs : specs.filter((s) => s.name === only), { parallel: parallel && only === undefined });
  metrics.grammarCompile.observe({ kind: 'tool_call' }, g.compileMs / 1000);
  return { specs, grammar: g.grammar, options: { names, constrained: true, parallel } };
}
