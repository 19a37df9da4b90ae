/**
 * The protocol-neutral tool plan every API maps its tool fields onto (OpenAI chat, Anthropic
 * Messages, OpenAI Responses, Ollama): functions validated before any work (each parameter schema
 * must be one the grammar compiler takes; names unique; a named choice must be declared), rendered
 * into the prompt by the chat template, constrained by a grammar when a call is required
 * (generation/tools/tool-grammar.ts), and read back from the output (tool-call-sink.ts).
 * Each protocol only says where its fields live, so its 400s name its own parameters.
 */
import { InferFluxError } from '../../errors.js';
import type { ChatMessage, PromptInput, ToolSpec } from '../../generation/contract.js';
import { compileOutputConstraint } from '../../generation/structured-output.js';
import { toolCallGrammar } from '../../generation/tools/tool-grammar.js';
import type { Metrics } from '../../metrics.js';
import type { ToolCallOptions } from './tool-call-sink.js';

export interface ToolPlan {
  /** Tools rendered into the prompt (undefined: none, or the choice is "none"). */
  specs: ToolSpec[] | undefined;
  /** GBNF when a call is required. */
  grammar: string | null;
  /** How the output is read for calls; null when no call can come. */
  options: ToolCallOptions | null;
}

/** A declared function and the request paths of its fields (for errors). */
export interface ToolDeclaration {
  name: string;
  description?: string | undefined;
  parameters?: unknown;
  namePath: string;
  parametersPath: string;
}

/** `required`: some call must be made; `{name}`: that function must be called. */
export type ToolChoiceKind = 'auto' | 'none' | 'required' | { name: string };

export interface ToolRequest {
  tools: ToolDeclaration[];
  /** Undefined: the protocol's default (auto with tools, none without). */
  choice: ToolChoiceKind | undefined;
  /** Where the choice lives in the request, e.g. `tool_choice`. */
  choicePath: string;
  parallel: boolean;
  /** The request's other output constraint, named as its fields (e.g. `'response_format' or 'grammar'`), or null. */
  otherConstraint: string | null;
}

export const NO_TOOLS: ToolPlan = { specs: undefined, grammar: null, options: null };

export function planTools(req: ToolRequest, metrics: Metrics): ToolPlan {
  const { tools } = req;
  const choice = req.choice ?? (tools.length > 0 ? 'auto' : 'none');
  const choiceError = (why: string) => new InferFluxError('invalid_request', why, { param: req.choicePath });
  if (tools.length === 0) {
    if (choice !== 'none' && choice !== 'auto') throw choiceError(`'${req.choicePath}' needs 'tools' to choose from.`);
    return NO_TOOLS;
  }
  const names = new Set<string>();
  const specs = tools.map((t): ToolSpec => {
    if (names.has(t.name)) throw new InferFluxError('invalid_request', `Two tools are named '${t.name}'.`, { param: t.namePath });
    names.add(t.name);
    if (t.parameters !== undefined) {
      const c = withPath(t.parametersPath, () => compileOutputConstraint({ kind: 'json_schema', schema: t.parameters, param: t.parametersPath }));
      metrics.grammarCompile.observe({ kind: 'tool_parameters' }, c.compileMs / 1000);
    }
    const spec: ToolSpec = { name: t.name };
    if (t.description !== undefined) spec.description = t.description;
    if (t.parameters !== undefined) spec.parameters = t.parameters;
    return spec;
  });
  if (choice === 'none') return NO_TOOLS;
  const parallel = req.parallel;
  if (choice === 'auto') return { specs, grammar: null, options: { names, constrained: false, parallel } };
  const only = typeof choice === 'object' ? choice.name : undefined;
  if (only !== undefined && !names.has(only)) throw choiceError(`'${req.choicePath}' names '${only}', which is not among the tools.`);
  if (req.otherConstraint !== null) throw choiceError(`A required tool call cannot be combined with ${req.otherConstraint}.`);
  const g = toolCallGrammar(only === undefined ? specs : specs.filter((s) => s.name === only), { parallel: parallel && only === undefined });
  metrics.grammarCompile.observe({ kind: 'tool_call' }, g.compileMs / 1000);
  return { specs, grammar: g.grammar, options: { names, constrained: true, parallel } };
}

/** A chat prompt with the plan's tools, when it has any to render. */
export function chatPromptWithTools(messages: ChatMessage[], plan: ToolPlan): PromptInput {
  return plan.specs ? { kind: 'chat', messages, tools: plan.specs } : { kind: 'chat', messages };
}

/**
 * The compiler's 400 with the field's path in its message too: Anthropic's and Ollama's error
 * shapes have no `param`, and a request may declare many tools.
 */
function withPath<T>(path: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    if (!(err instanceof InferFluxError) || err.code !== 'invalid_request' || err.message.startsWith(`'${path}'`)) throw err;
    throw new InferFluxError('invalid_request', `'${path}': ${err.message}`, { param: path, cause: err });
  }
}

/** Characters of a call's arguments per streamed delta. */
const ARGUMENT_PIECE = 32;

/** A call's JSON arguments in the pieces a stream sends them in (clients concatenate). */
export function argumentPieces(args: string): string[] {
  const out: string[] = [];
  for (let at = 0; at < args.length; at += ARGUMENT_PIECE) out.push(args.slice(at, at + ARGUMENT_PIECE));
  return out;
}
