/** Registers the text completions route and its LM Studio alias. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { completionHandler } from './handler.js';
import { completionSchema, type CompletionRequest } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  const validate = compileRequestSchema<CompletionRequest>('POST /v1/completions', completionSchema(deps.config.limits));
  app.post('/v1/completions', completionHandler(deps, validate));
  app.post('/api/v0/completions', completionHandler(deps, validate, 'lmstudio'));
}
