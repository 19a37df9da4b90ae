/**
 * The operations console. `/ui` serves static files from the repository's `ui/` folder (no build
 * step, no CDN), read once at start-up and served from memory. The page itself is public (it holds
 * no data); everything it shows comes from the console API, called with the key entered in the
 * page: `GET /v1/admin/console` (one JSON snapshot) and `GET /v1/admin/console/events` (the same
 * snapshot over SSE, every second). Both are `admin` through the RBAC table's `/v1/admin/*` row
 * (with auth off, which only happens on loopback unless an operator forces it, everyone is admin).
 * A strict CSP allows only this origin's scripts, styles and fetches.
 */
import { readFileSync } from 'node:fs';
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import { sendError, sendRaw } from '../../respond.js';
import type { Router } from '../../router.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import { ConsoleFeed } from '../../console-feed.js';
import { sendJson } from '../../respond.js';
import { ConsoleLive } from './live.js';
import { buildSnapshot, type SnapshotSource } from './snapshot.js';

const UI_DIR = new URL('../../../../ui/', import.meta.url);

/** What the page may load: only itself. No inline script or style, no framing, no forms elsewhere. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

export function register(app: Router, deps: HttpDeps): void {
  const bodies = new Map(Object.entries(FILES).map(([name, type]) => [name, { type, body: readFileSync(new URL(name, UI_DIR), 'utf8') }]));
  const headers = {
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  };
  const serve = (name: string, res: HttpResponse): void => {
    const file = bodies.get(name);
    if (!file) return sendError(res, new InferFluxError('not_found', `No console file ${JSON.stringify(name.slice(0, 64))}.`));
    sendRaw(res, 200, file.body, file.type, headers);
  };
  // The page names its icon (favicon.svg), so browsers do not ask for /favicon.ico.
  app.get('/ui', (res) => serve('index.html', res));
  app.get('/ui/:file', (res, ctx: RequestContext) => serve(ctx.params.file ?? '', res));

  const feed = deps.console ?? new ConsoleFeed();
  const src: SnapshotSource = { deps, feed: () => feed.view() };
  const live = new ConsoleLive(src, feed, { heartbeatSeconds: deps.config.server.sseHeartbeatSeconds, maxBufferedBytes: deps.config.server.sseMaxBufferedBytes });
  app.get('/v1/admin/console', async (res: HttpResponse) => sendJson(res, 200, await buildSnapshot(src), { 'cache-control': 'no-store' }));
  app.get('/v1/admin/console/events', (res: HttpResponse) => live.open(res));
}
