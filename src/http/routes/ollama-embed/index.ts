/** Registers Ollama's embeddings routes: `/api/embed` and the legacy `/api/embeddings`. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { embedHandler, embeddingsHandler } from './handler.js';
import { embedSchema, embeddingsSchema, type OllamaEmbeddingsRequest, type OllamaEmbedRequest } from './schema.js';

const ollama = { protocol: 'ollama' } as const;

export function register(app: Router, deps: HttpDeps): void {
  const limits = deps.config.limits;
  app.post('/api/embed', embedHandler(deps, compileRequestSchema<OllamaEmbedRequest>('POST /api/embed', embedSchema(limits))), ollama);
  app.post('/api/embeddings', embeddingsHandler(deps, compileRequestSchema<OllamaEmbeddingsRequest>('POST /api/embeddings', embeddingsSchema(limits))), ollama);
}
