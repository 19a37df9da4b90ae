/** Registers Ollama's model routes and the 501 for push. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { notImplemented, psHandler, showHandler, tagsHandler, versionHandler } from './handler.js';
import { copyHandler, deleteHandler, pullHandler } from './manage.js';
import { copySchema, createSchema, deleteSchema, pullSchema, showSchema, type CopyRequest, type CreateRequest, type DeleteRequest, type PullRequestBody, type ShowRequest } from './schema.js';
import { createHandler } from './create.js';
import { optionsSchema } from '../ollama-common/options.js';

const ollama = { protocol: 'ollama' } as const;

/**
 * Routes that answer 501: [method, path, what]. Push stays here: this server hosts no registry
 * and speaks no registry's upload protocol, so there is nowhere to push to.
 */
export const OLLAMA_NOT_IMPLEMENTED = [['post', '/api/push', 'Pushing models (/api/push)']] as const;

export function register(app: Router, deps: HttpDeps): void {
  app.get('/api/tags', tagsHandler(deps), ollama);
  app.get('/api/ps', psHandler(deps), ollama);
  app.get('/api/version', versionHandler(), ollama);
  app.post('/api/show', showHandler(deps, compileRequestSchema<ShowRequest>('POST /api/show', showSchema)), ollama);
  app.post('/api/pull', pullHandler(deps, compileRequestSchema<PullRequestBody>('POST /api/pull', pullSchema)), ollama);
  app.post('/api/create', createHandler(deps, compileRequestSchema<CreateRequest>('POST /api/create', createSchema(optionsSchema(deps.config.limits)))), ollama);
  app.post('/api/copy', copyHandler(deps, compileRequestSchema<CopyRequest>('POST /api/copy', copySchema)), ollama);
  app.add('delete', '/api/delete', deleteHandler(deps, compileRequestSchema<DeleteRequest>('DELETE /api/delete', deleteSchema)), ollama);
  for (const [method, path, what] of OLLAMA_NOT_IMPLEMENTED) app.add(method, path, notImplemented(what), ollama);
}
