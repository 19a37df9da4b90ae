/** Registers Ollama's model routes and the 501s for push and blob uploads. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { notImplemented, psHandler, showHandler, tagsHandler, versionHandler } from './handler.js';
import { copyHandler, deleteHandler, pullHandler } from './manage.js';
import { copySchema, createSchema, deleteSchema, pullSchema, showSchema, type CopyRequest, type CreateRequest, type DeleteRequest, type PullRequestBody, type ShowRequest } from './schema.js';
import { createHandler } from './create.js';
import { optionsSchema } from '../ollama-common/options.js';
import { sendRaw } from '../../respond.js';

const ollama = { protocol: 'ollama' } as const;

/**
 * Routes that answer 501: [method, path, what]. Push: this server hosts no registry and speaks no
 * registry's upload protocol, so there is nowhere to push to. Blob uploads (what `ollama create`
 * sends for `FROM ./file.gguf`): created models build on served models here, not on uploaded weights.
 */
export const OLLAMA_NOT_IMPLEMENTED = [
  ['post', '/api/push', 'Pushing models (/api/push)'],
  ['post', '/api/blobs/:digest', 'Uploading model files (/api/blobs, for create from a local GGUF)'],
] as const;

export function register(app: Router, deps: HttpDeps): void {
  app.get('/api/tags', tagsHandler(deps), ollama);
  app.get('/api/ps', psHandler(deps), ollama);
  app.get('/api/version', versionHandler(), ollama);
  app.post('/api/show', showHandler(deps, compileRequestSchema<ShowRequest>('POST /api/show', showSchema)), ollama);
  app.post('/api/pull', pullHandler(deps, compileRequestSchema<PullRequestBody>('POST /api/pull', pullSchema)), ollama);
  app.post('/api/create', createHandler(deps, compileRequestSchema<CreateRequest>('POST /api/create', createSchema(optionsSchema(deps.config.limits, true)))), ollama);
  app.post('/api/copy', copyHandler(deps, compileRequestSchema<CopyRequest>('POST /api/copy', copySchema)), ollama);
  app.add('delete', '/api/delete', deleteHandler(deps, compileRequestSchema<DeleteRequest>('DELETE /api/delete', deleteSchema)), ollama);
  for (const [method, path, what] of OLLAMA_NOT_IMPLEMENTED) app.add(method, path, notImplemented(what), ollama);
  // The Ollama CLI asks whether a blob exists before uploading it: none ever does here, so its
  // upload then gets the 501 above, whose message says what to do instead.
  app.add('head', '/api/blobs/:digest', (res) => sendRaw(res, 404, '', 'text/plain; charset=utf-8', {}, false, true), ollama);
}
