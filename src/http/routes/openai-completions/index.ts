/** Registers the text completions route and its LM Studio alias. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { completionHandler } from './handler.js';
import { completionSchema, type CompletionRequest } from './schema.js';

export const COMPLETION_PATHS = ['/v1/completions', '/api/v0/completions'] as const;

export function register(app: Router, deps: HttpDeps): void {
  const validate = compileRequestSchema<CompletionRequest>('POST /v1/completions', completionSchema(deps.config.limits));
  const handler = completionHandler(deps, validate);
  for (const p of COMPLETION_PATHS) app.post(p, handler);
}
