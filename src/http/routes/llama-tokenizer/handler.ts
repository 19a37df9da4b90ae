/**
 * llama.cpp server's tokenizer helpers, through the facade's tokenizer pool (never the main
 * thread): `/tokenize` → `{tokens}` (ids, or `{id, piece}` objects with `with_pieces`),
 * `/detokenize` → `{content}`, `/apply-template` → `{prompt}` (the chat template applied, as a
 * chat request would be tokenized). llama.cpp's defaults: `add_special` false, `parse_special` true.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { readJsonBody } from '../../body.js';
import { sendJson } from '../../respond.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import type { Validator } from '../../validate.js';
import { toChatMessage } from '../openai-chat/schema.js';
import type { ApplyTemplateRequest, DetokenizeRequest, TokenizeRequest } from './schema.js';

export function tokenizeHandler(deps: HttpDeps, validate: Validator<TokenizeRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const b = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    const withPieces = b.with_pieces === true;
    const r = await deps.gateway.tokenize(b.model, { text: b.content, addSpecial: b.add_special === true, parseSpecial: b.parse_special !== false, withPieces });
    sendJson(res, 200, { tokens: withPieces ? r.tokens.map((id, i) => ({ id, piece: r.pieces![i] })) : r.tokens });
  };
}

export function detokenizeHandler(deps: HttpDeps, validate: Validator<DetokenizeRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const b = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    sendJson(res, 200, { content: await deps.gateway.detokenize(b.model, b.tokens) });
  };
}

export function applyTemplateHandler(deps: HttpDeps, validate: Validator<ApplyTemplateRequest>) {
  return async (res: HttpResponse, ctx: RequestContext): Promise<void> => {
    const b = validate(await readJsonBody(res, ctx, deps.config.server.maxBodyBytes));
    sendJson(res, 200, { prompt: await deps.gateway.applyTemplate(b.model, b.messages.map(toChatMessage)) });
  };
}
