/** Registers Anthropic's Messages API: `POST /v1/messages` and `POST /v1/messages/count_tokens`. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { countTokensHandler, messagesHandler } from './handler.js';
import { countTokensSchema, messagesSchema, type CountTokensRequest, type MessagesRequest } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  const messages = compileRequestSchema<MessagesRequest>('POST /v1/messages', messagesSchema(deps.config.limits));
  const count = compileRequestSchema<CountTokensRequest>('POST /v1/messages/count_tokens', countTokensSchema());
  app.post('/v1/messages', messagesHandler(deps, messages), { protocol: 'anthropic' });
  app.post('/v1/messages/count_tokens', countTokensHandler(deps, count), { protocol: 'anthropic' });
}
