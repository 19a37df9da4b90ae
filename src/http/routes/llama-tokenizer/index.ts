/** Registers llama.cpp server's tokenizer helpers: `/tokenize`, `/detokenize`, `/apply-template`. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { compileRequestSchema } from '../../validate.js';
import { applyTemplateHandler, detokenizeHandler, tokenizeHandler } from './handler.js';
import { applyTemplateSchema, detokenizeSchema, tokenizeSchema, type ApplyTemplateRequest, type DetokenizeRequest, type TokenizeRequest } from './schema.js';

export function register(app: Router, deps: HttpDeps): void {
  app.post('/tokenize', tokenizeHandler(deps, compileRequestSchema<TokenizeRequest>('POST /tokenize', tokenizeSchema)));
  app.post('/detokenize', detokenizeHandler(deps, compileRequestSchema<DetokenizeRequest>('POST /detokenize', detokenizeSchema)));
  app.post('/apply-template', applyTemplateHandler(deps, compileRequestSchema<ApplyTemplateRequest>('POST /apply-template', applyTemplateSchema())));
}
