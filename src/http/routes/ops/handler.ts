/**
 * Operations endpoints. Liveness answers from the event loop alone (if this runs, the loop runs);
 * readiness asks the gateway whether models and pools are up; metrics render the registry.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import { sendError, sendJson, sendRaw } from '../../respond.js';
import type { HttpDeps } from '../../types.js';

export function liveHandler() {
  return (res: HttpResponse): void => sendJson(res, 200, { status: 'ok' });
}

/**
 * `GET /` and `HEAD /`: 200 and one line of text, as Ollama's server answers its root. The Ollama
 * CLI (`OLLAMA_HOST=...`) checks the server with `HEAD /` before `run`, `pull` or `create`, so
 * without it the CLI reports that no server is running.
 */
export const ROOT_TEXT = 'InferFlux is running (OpenAI /v1, Ollama /api, LM Studio /api/v0, Anthropic /v1/messages)\n';

export function rootHandler(head = false) {
  return (res: HttpResponse): void => sendRaw(res, 200, ROOT_TEXT, 'text/plain; charset=utf-8', {}, false, head);
}

export function readyHandler(deps: HttpDeps) {
  return (res: HttpResponse): void => {
    const report = deps.gateway.readiness();
    sendJson(res, report.ready ? 200 : 503, report);
  };
}

export function metricsHandler(deps: HttpDeps) {
  return async (res: HttpResponse): Promise<void> => {
    try {
      const text = await deps.metrics.render();
      sendRaw(res, 200, text, deps.metrics.contentType);
    } catch (err) {
      sendError(res, new InferFluxError('internal_error', 'Metrics could not be rendered.', { cause: err }));
    }
  };
}
