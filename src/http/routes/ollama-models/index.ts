/** Registers Ollama's model routes and the 501s for what is not served yet. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { notImplemented, psHandler, showHandler, tagsHandler, versionHandler } from './handler.js';
import { showSchema, type ShowRequest } from './schema.js';

const ollama = { protocol: 'ollama' } as const;

/** Routes that answer 501 until model management exists: [method, path, what]. */
export const OLLAMA_NOT_IMPLEMENTED = [
  ['post', '/api/pull', 'Pulling models (/api/pull)'],
  ['post', '/api/push', 'Pushing models (/api/push)'],
  ['post', '/api/create', 'Creating models (/api/create)'],
  ['post', '/api/copy', 'Copying models (/api/copy)'],
  ['delete', '/api/delete', 'Deleting models (/api/delete)'],
] as const;

export function register(app: Router, deps: HttpDeps): void {
  app.get('/api/tags', tagsHandler(deps), ollama);
  app.get('/api/ps', psHandler(deps), ollama);
  app.get('/api/version', versionHandler(), ollama);
  app.post('/api/show', showHandler(deps, compileRequestSchema<ShowRequest>('POST /api/show', showSchema)), ollama);
  for (const [method, path, what] of OLLAMA_NOT_IMPLEMENTED) app.add(method, path, notImplemented(what), ollama);
}
