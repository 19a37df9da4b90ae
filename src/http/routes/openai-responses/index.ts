/** Registers OpenAI's Responses API (stateless): `POST /v1/responses`. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { responsesHandler } from './handler.js';
import { responsesSchema, type ResponsesRequest } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  app.post('/v1/responses', responsesHandler(deps, compileRequestSchema<ResponsesRequest>('POST /v1/responses', responsesSchema(deps.config.limits))));
}
