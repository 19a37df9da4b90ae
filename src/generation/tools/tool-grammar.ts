/**
 * The grammar of a required tool call (`tool_choice: "required"` or a named function): one or
 * more `<tool_call>{"name": ..., "arguments": ...}</tool_call>` blocks (InferFlux's format, read
 * back by parse-tool-calls.ts) whose JSON must match the called function's parameter schema.
 * Built from the JSON Schema compiler (runtime/grammar), so the call is valid JSON for its schema.
 */
import { compileOutputConstraint, type OutputConstraint } from '../structured-output.js';
import type { ToolSpec } from '../contract.js';

/** Calls one answer may make when parallel calls are allowed. */
export const MAX_PARALLEL_CALLS = 4;

export function toolCallGrammar(tools: ToolSpec[], opts: { only?: string; parallel: boolean }): OutputConstraint {
  const callable = opts.only === undefined ? tools : tools.filter((t) => t.name === opts.only);
  const callSchemas = callable.map((t) => ({
    type: 'object',
    properties: { name: { const: t.name }, arguments: t.parameters ?? { type: 'object', properties: {}, additionalProperties: false } },
    required: ['name', 'arguments'],
    additionalProperties: false,
  }));
  const schema = callSchemas.length === 1 ? callSchemas[0]! : { anyOf: callSchemas };
  const c = compileOutputConstraint({ kind: 'json_schema', schema, param: 'tools' });
  // The compiled grammar's `root` becomes the call's JSON; the new root wraps it in the tags.
  const json = c.grammar.replace(/^root ::=/m, 'tool-call-json ::=');
  const block = '"<tool_call>\\n" tool-call-json "\\n</tool_call>"';
  const root = opts.parallel ? `root ::= ${block} ("\\n" ${block}){0,${MAX_PARALLEL_CALLS - 1}}` : `root ::= ${block}`;
  return { grammar: `${root}\n${json}`, check: null, compileMs: c.compileMs };
}
