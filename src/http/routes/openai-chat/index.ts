/** Registers the chat completions route and its LM Studio alias (OpenAI shapes plus LM Studio's stats). */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { chatHandler } from './handler.js';
import { chatSchema, type ChatRequest } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  const validate = compileRequestSchema<ChatRequest>('POST /v1/chat/completions', chatSchema(deps.config.limits));
  app.post('/v1/chat/completions', chatHandler(deps, validate));
  app.post('/api/v0/chat/completions', chatHandler(deps, validate, 'lmstudio'));
}
