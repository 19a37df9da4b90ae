/**
 * Ollama's `format`: `"json"` (any JSON object) or a JSON schema, as constrained decoding through
 * the same compiler and checks as OpenAI's `response_format` (generation/structured-output.ts):
 * a keyword the compiler does not support is a 400 naming `format`, before any work.
 */
import { InferFluxError } from '../../../errors.js';
import { compileOutputConstraint, type OutputConstraint } from '../../../generation/structured-output.js';
import type { Metrics } from '../../../metrics.js';

/** The constraint for `format`, or null when the request has none. */
export function constraintForFormat(format: unknown, metrics: Metrics): OutputConstraint | null {
  if (format === undefined || format === null || format === '') return null;
  let c: OutputConstraint;
  if (format === 'json') c = compileOutputConstraint({ kind: 'json_object', param: 'format' });
  else if (typeof format === 'object' && !Array.isArray(format)) c = compileOutputConstraint({ kind: 'json_schema', schema: format, param: 'format' });
  else throw new InferFluxError('invalid_request', `'format' must be "json" or a JSON schema object.`, { param: 'format' });
  metrics.grammarCompile.observe({ kind: format === 'json' ? 'json_object' : 'json_schema' }, c.compileMs / 1000);
  return c;
}
