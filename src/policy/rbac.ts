/**
 * The one route-to-scope table. Every path the server serves, and only those, is listed here with
 * the access it needs; the authorize step asks `accessFor(path)` with the normalised path (the
 * same form the router matched), so auth and routing can never disagree on what a path is.
 *
 * A path that matches no row needs `admin`: a route added without a row here fails closed, and a
 * unit test checks that every registered route has an explicit row and every row serves a route.
 * LoRA adapter routes take `admin` or `adapter-manager` (a key that manages adapters, not models).
 */
import type { Scope } from './types.js';

export type Access =
  /** No credentials read at all (probes). */
  | { kind: 'public' }
  /** Public unless `auth.metrics_public` is false, then `read`. */
  | { kind: 'metrics' }
  /** Any one of these scopes. */
  | { kind: 'scopes'; anyOf: readonly Scope[] };

const PUBLIC: Access = { kind: 'public' };
const GENERATE: Access = { kind: 'scopes', anyOf: ['generate'] };
const READ: Access = { kind: 'scopes', anyOf: ['read'] };
const ADMIN: Access = { kind: 'scopes', anyOf: ['admin'] };
const ADAPTERS: Access = { kind: 'scopes', anyOf: ['admin', 'adapter-manager'] };

/**
 * `[pattern, access]`, first match wins. `:x` matches one segment, a trailing `*` matches zero or
 * more segments.
 */
export const ROUTE_SCOPES: readonly (readonly [pattern: string, access: Access])[] = [
  // Ops probes: orchestrators call them without credentials. `/` is Ollama's heartbeat (HEAD /).
  ['/', PUBLIC],
  ['/healthz', PUBLIC],
  ['/livez', PUBLIC],
  ['/readyz', PUBLIC],
  ['/metrics', { kind: 'metrics' }],
  // OpenAI
  ['/v1/chat/completions', GENERATE],
  ['/v1/completions', GENERATE],
  ['/v1/responses', GENERATE],
  ['/v1/embeddings', GENERATE],
  ['/v1/messages', GENERATE],
  ['/v1/messages/count_tokens', GENERATE],
  ['/v1/models', READ],
  ['/v1/models/:id', READ],
  // LM Studio
  ['/api/v0/chat/completions', GENERATE],
  ['/api/v0/completions', GENERATE],
  ['/api/v0/embeddings', GENERATE],
  ['/api/v0/models', READ],
  ['/api/v0/models/:id', READ],
  // Ollama
  ['/api/chat', GENERATE],
  ['/api/generate', GENERATE],
  ['/api/embed', GENERATE],
  ['/api/embeddings', GENERATE],
  ['/api/tags', READ],
  ['/api/show', READ],
  ['/api/ps', READ],
  ['/api/version', READ],
  // Model management: pull, create, copy and delete change the local models directory (push is 501); admin.
  ['/api/pull', ADMIN],
  ['/api/push', ADMIN],
  ['/api/create', ADMIN],
  ['/api/copy', ADMIN],
  ['/api/delete', ADMIN],
  ['/api/blobs/:digest', ADMIN],
  // llama.cpp server's tokenizer helpers: they run no model, so `read` is enough.
  ['/tokenize', READ],
  ['/detokenize', READ],
  ['/apply-template', READ],
  // Runtime model management (load, unload, default); listed so the table names them.
  ['/v1/admin/models', ADMIN],
  ['/v1/admin/models/:id', ADMIN],
  ['/v1/admin/models/:id/default', ADMIN],
  // The operations console's snapshot and live stream (src/http/routes/console).
  ['/v1/admin/console', ADMIN],
  ['/v1/admin/console/events', ADMIN],
  ['/v1/admin/adapters', ADAPTERS],
  ['/v1/admin/adapters/:id', ADAPTERS],
  ['/v1/admin/*', ADMIN],
  // Token traces and engine internals (src/http/routes/debug): ids and times, still admin only.
  ['/debug', ADMIN],
  ['/debug/traces/:id', ADMIN],
  // The web console's static files hold no data; its API calls carry the key typed into the page.
  ['/ui', PUBLIC],
  ['/ui/:file', PUBLIC],
];

/** What a path that matches no row needs. */
export const UNLISTED: Access = ADMIN;

interface CompiledRow {
  parts: string[];
  prefix: boolean;
  access: Access;
  pattern: string;
}

const COMPILED: CompiledRow[] = ROUTE_SCOPES.map(([pattern, access]) => {
  const parts = pattern.split('/').filter((p) => p !== '');
  const prefix = parts[parts.length - 1] === '*';
  if (prefix) parts.pop();
  return { parts, prefix, access, pattern };
});

function matches(row: CompiledRow, segments: readonly string[]): boolean {
  if (row.prefix ? segments.length < row.parts.length : segments.length !== row.parts.length) return false;
  for (let i = 0; i < row.parts.length; i++) {
    const p = row.parts[i]!;
    if (!p.startsWith(':') && p !== segments[i]) return false;
  }
  return true;
}

/** The row for normalised path segments (see `normalisePath`), or undefined when none matches. */
export function findRow(segments: readonly string[]): { pattern: string; access: Access } | undefined {
  for (const row of COMPILED) if (matches(row, segments)) return row;
  return undefined;
}

export function accessFor(segments: readonly string[]): Access {
  return findRow(segments)?.access ?? UNLISTED;
}

/** True when the scopes satisfy the access (public access is always satisfied). */
export function allows(access: Access, scopes: ReadonlySet<Scope>, metricsPublic: boolean): boolean {
  switch (access.kind) {
    case 'public':
      return true;
    case 'metrics':
      return metricsPublic || scopes.has('read');
    case 'scopes':
      return access.anyOf.some((s) => scopes.has(s));
    default: {
      const never: never = access;
      return never;
    }
  }
}

/** Whether a route runs the model (counted against `limits.max_concurrent_requests_per_key`). */
export function isGeneration(access: Access): boolean {
  return access === GENERATE;
}

/** Whether a route reads credentials at all. */
export function isPublic(access: Access, metricsPublic: boolean): boolean {
  return access.kind === 'public' || (access.kind === 'metrics' && metricsPublic);
}

/** For the 403 message: which scope(s) would have worked. */
export function describe(access: Access): string {
  switch (access.kind) {
    case 'public':
      return 'none';
    case 'metrics':
      return 'read';
    case 'scopes':
      return access.anyOf.join(' or ');
    default: {
      const never: never = access;
      return never;
    }
  }
}
