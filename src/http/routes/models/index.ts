/** Registers the model listing routes (OpenAI and LM Studio). */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { getHandler, listHandler, lmStudioModel, openAIModelGet, openAIModelList } from './handler.js';

export function register(app: Router, deps: HttpDeps): void {
  app.get('/v1/models', openAIModelList(deps));
  app.get('/v1/models/:id', openAIModelGet(deps));
  app.get('/api/v0/models', listHandler(deps, lmStudioModel));
  app.get('/api/v0/models/:id', getHandler(deps, lmStudioModel));
}
