/** Registers `POST /v1/embeddings` and its LM Studio alias `/api/v0/embeddings` (same shapes). */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { embeddingsHandler } from './handler.js';
import { embeddingsSchema, type EmbeddingsRequest } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  const handler = embeddingsHandler(deps, compileRequestSchema<EmbeddingsRequest>('POST /v1/embeddings', embeddingsSchema));
  app.post('/v1/embeddings', handler);
  app.post('/api/v0/embeddings', handler);
}
