/** Registers Ollama's generation routes: `POST /api/chat` and `POST /api/generate`. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { ollamaHandler } from './handler.js';
import { chatSchema, generateSchema, type OllamaChatRequest, type OllamaGenerateRequest } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  const chat = compileRequestSchema<OllamaChatRequest>('POST /api/chat', chatSchema(deps.config.limits));
  const generate = compileRequestSchema<OllamaGenerateRequest>('POST /api/generate', generateSchema(deps.config.limits));
  app.post('/api/chat', ollamaHandler('chat', deps, chat), { protocol: 'ollama' });
  app.post('/api/generate', ollamaHandler('generate', deps, generate), { protocol: 'ollama' });
}
