/** Registers the chat completions route and its LM Studio alias. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { chatHandler } from './handler.js';
import { chatSchema, type ChatRequest } from './schema.js';

export const CHAT_PATHS = ['/v1/chat/completions', '/api/v0/chat/completions'] as const;

export function register(app: Router, deps: HttpDeps): void {
  const validate = compileRequestSchema<ChatRequest>('POST /v1/chat/completions', chatSchema(deps.config.limits));
  const handler = chatHandler(deps, validate);
  for (const p of CHAT_PATHS) app.post(p, handler);
}
