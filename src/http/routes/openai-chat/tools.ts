/**
 * A chat request's tools (OpenAI's `tools`, `tool_choice`, `parallel_tool_calls`) onto the shared
 * tool plan (http/generation/tool-plan.ts): validated before any work, rendered into the prompt,
 * constrained by a grammar when a call is required, read back from the output.
 */
import type { Metrics } from '../../../metrics.js';
import { planTools, type ToolPlan } from '../../generation/tool-plan.js';
import type { ChatRequest } from './schema.js';

export type { ToolPlan } from '../../generation/tool-plan.js';

export function toolPlanOf(body: ChatRequest, metrics: Metrics): ToolPlan {
  const choice = body.tool_choice;
  const constrained = (body.response_format && body.response_format.type !== 'text') || (body.grammar !== undefined && body.grammar !== null);
  return planTools(
    {
      tools: (body.tools ?? []).map((t, i) => ({
        name: t.function.name,
        description: t.function.description,
        parameters: t.function.parameters,
        namePath: `tools[${i}].function.name`,
        parametersPath: `tools[${i}].function.parameters`,
      })),
      choice: typeof choice === 'object' ? { name: choice.function.name } : choice,
      choicePath: 'tool_choice',
      parallel: body.parallel_tool_calls ?? true,
      otherConstraint: constrained ? "'response_format' or 'grammar'" : null,
    },
    metrics,
  );
}
