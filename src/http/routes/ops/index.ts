/** Registers the root (Ollama's heartbeat), health, readiness and metrics routes. */
import type { Router } from '../../router.js';
import type { HttpDeps } from '../../types.js';
import { liveHandler, metricsHandler, readyHandler, rootHandler } from './handler.js';

export function register(app: Router, deps: HttpDeps): void {
  app.get('/', rootHandler());
  app.add('head', '/', rootHandler(true));
  app.get('/healthz', liveHandler());
  app.get('/livez', liveHandler());
  app.get('/readyz', readyHandler(deps));
  app.get('/metrics', metricsHandler(deps));
}
