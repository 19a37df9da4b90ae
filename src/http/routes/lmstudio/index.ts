/** LM Studio's REST API routes that are not aliases of the OpenAI ones: `/api/v0/embeddings` (501 until embeddings land). */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import { sendError } from '../../respond.js';
import type { Router } from '../../router.js';

export function register(app: Router): void {
  app.post('/api/v0/embeddings', (res: HttpResponse) =>
    sendError(res, new InferFluxError('not_implemented', 'Embeddings (/api/v0/embeddings) are not implemented on this server yet.')),
  );
}
