/**
 * OpenAI's structured-output fields: `response_format` (`text`, `json_object`, `json_schema` with
 * `name`, `schema`, `strict`, `description`) and the llama.cpp-style raw GBNF `grammar`, shared by
 * chat and text completions. Compiled before any work (generation/structured-output.ts).
 */
import { InferFluxError } from '../../../errors.js';
import { compileOutputConstraint, type OutputConstraint, type OutputSpec } from '../../../generation/structured-output.js';
import type { Metrics } from '../../../metrics.js';

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; schema?: unknown; strict?: boolean | null; description?: string } };

export interface StructuredBody {
  response_format?: ResponseFormat | null;
  grammar?: string | null;
  ignore_eos?: boolean;
  min_tokens?: number;
}

/** Largest raw grammar accepted in a request (the GBNF checker bounds rules and nesting too). */
const MAX_GRAMMAR_BYTES = 512 * 1024;

export const structuredProperties: Record<string, object> = {
  response_format: {
    anyOf: [
      { type: 'object', required: ['type'], additionalProperties: false, properties: { type: { enum: ['text', 'json_object'] } } },
      {
        type: 'object',
        required: ['type', 'json_schema'],
        additionalProperties: false,
        properties: {
          type: { const: 'json_schema' },
          json_schema: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
              description: { type: 'string', maxLength: 4096 },
              // Any JSON value here: the compiler names what it does not support.
              schema: {},
              strict: { type: ['boolean', 'null'] },
            },
          },
        },
      },
      { type: 'null' },
    ],
  },
  grammar: { anyOf: [{ type: 'string', minLength: 1, maxLength: MAX_GRAMMAR_BYTES }, { type: 'null' }] },
};

/** What the body asks the output to follow, or null for free text. */
export function outputSpecOf(body: StructuredBody): OutputSpec | null {
  const rf = body.response_format;
  const wantsFormat = rf !== undefined && rf !== null && rf.type !== 'text';
  const wantsGrammar = body.grammar !== undefined && body.grammar !== null;
  if (wantsFormat && wantsGrammar) {
    throw new InferFluxError('invalid_request', "Set 'response_format' or 'grammar', not both.", { param: 'grammar' });
  }
  let spec: OutputSpec | null = null;
  if (wantsGrammar) spec = { kind: 'gbnf', text: body.grammar!, param: 'grammar' };
  else if (rf?.type === 'json_object') spec = { kind: 'json_object', param: 'response_format' };
  else if (rf?.type === 'json_schema') {
    if (rf.json_schema.schema === undefined) {
      throw new InferFluxError('invalid_request', "'response_format.json_schema.schema' is required: the JSON Schema the output must follow.", {
        param: 'response_format.json_schema.schema',
      });
    }
    spec = { kind: 'json_schema', schema: rf.json_schema.schema, param: 'response_format.json_schema.schema' };
  }
  if (spec && body.ignore_eos === true) {
    throw new InferFluxError('invalid_request', "'ignore_eos' cannot be combined with constrained output: the grammar ends the answer.", { param: 'ignore_eos' });
  }
  if (spec && (body.min_tokens ?? 0) > 0) {
    throw new InferFluxError('invalid_request', "'min_tokens' cannot be combined with constrained output: the grammar ends the answer.", { param: 'min_tokens' });
  }
  return spec;
}

/** Compiles the body's constraint (counted in metrics), or null for free text. */
export function outputConstraintOf(body: StructuredBody, metrics: Metrics): OutputConstraint | null {
  const spec = outputSpecOf(body);
  if (!spec) return null;
  const c = compileOutputConstraint(spec);
  metrics.grammarCompile.observe({ kind: spec.kind }, c.compileMs / 1000);
  return c;
}
