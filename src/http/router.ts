/**
 * Path normalisation and routing. Every request path is resolved ONE way before anything looks at
 * it (`//v1/models`, `/v1/../v1/models` and `/v1/%2e%2e/v1/models` are all `/v1/models`): vLLM had
 * an auth bypass because its auth check and its router disagreed on such paths. uWS routes raw
 * URLs, so the server registers a single catch-all and routes here on the normalised segments.
 */
import type { WireProtocol } from '../errors.js';
import type { Handler, Method } from './types.js';

/**
 * Splits, percent-decodes each segment, drops empty and `.` segments and resolves `..` (clamped at
 * the root, as browsers do). Returns null for undecodable input (bad `%` escapes, NUL bytes).
 * A decoded `/` (from `%2F`) stays inside its segment, so model ids like `org/model` work as path
 * parameters without ever creating a new path level.
 */
export function normalisePath(rawPath: string): string[] | null {
  const out: string[] = [];
  for (const raw of rawPath.split('/')) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (seg.includes('\0')) return null;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return out;
}

/** The normalised path as text, for logs and labels (`/` joins, `%2F` inside a segment kept). */
export function pathText(segments: string[]): string {
  return '/' + segments.map((s) => s.replaceAll('%', '%25').replaceAll('/', '%2F')).join('/');
}

interface Route {
  method: Method;
  pattern: string;
  parts: string[];
  handler: Handler;
  protocol: WireProtocol;
}

export interface RouteOptions {
  /** Whose clients call the route: its errors use that protocol's envelope. Defaults to `openai`. */
  protocol?: WireProtocol;
}

/**
 * The protocol of a path no route matched, so even a 404 reaches the client in a shape it can
 * read: Ollama's API lives under `/api/` (LM Studio's `/api/v0/` speaks OpenAI), Anthropic's is
 * `/v1/messages`.
 */
export function protocolForPath(segments: string[]): WireProtocol {
  if (segments[0] === 'api' && segments[1] !== 'v0') return 'ollama';
  if (segments[0] === 'v1' && segments[1] === 'messages') return 'anthropic';
  return 'openai';
}

export type RouteMatch =
  | { kind: 'found'; route: { pattern: string; handler: Handler; protocol: WireProtocol }; params: Record<string, string> }
  | { kind: 'method_not_allowed'; allow: string[] }
  | { kind: 'not_found' };

export class Router {
  private readonly routes: Route[] = [];

  /** `pattern` uses `:name` segments, e.g. `/v1/models/:id`. */
  add(method: Method, pattern: string, handler: Handler, opts: RouteOptions = {}): this {
    const parts = pattern.split('/').filter((p) => p !== '');
    if (this.routes.some((r) => r.method === method && r.pattern === pattern)) {
      throw new Error(`route registered twice: ${method.toUpperCase()} ${pattern}`);
    }
    this.routes.push({ method, pattern, parts, handler, protocol: opts.protocol ?? 'openai' });
    return this;
  }

  get(pattern: string, handler: Handler, opts?: RouteOptions): this {
    return this.add('get', pattern, handler, opts);
  }

  post(pattern: string, handler: Handler, opts?: RouteOptions): this {
    return this.add('post', pattern, handler, opts);
  }

  match(method: string, segments: string[]): RouteMatch {
    const allow = new Set<string>();
    for (const r of this.routes) {
      const params = matchParts(r.parts, segments);
      if (!params) continue;
      // HEAD is served only where a route registers it (`/`, Ollama's heartbeat): uWS needs a body-less variant of each handler.
      if (r.method === method) return { kind: 'found', route: r, params };
      allow.add(r.method.toUpperCase());
    }
    return allow.size > 0 ? { kind: 'method_not_allowed', allow: [...allow].sort() } : { kind: 'not_found' };
  }
}

function matchParts(parts: string[], segments: string[]): Record<string, string> | null {
  if (parts.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = segments[i]!;
    else if (p !== segments[i]) return null;
  }
  return params;
}
