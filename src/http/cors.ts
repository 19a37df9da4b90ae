/**
 * CORS for browser clients (`server.cors`): the allow-origin header on normal responses and the
 * answer to preflight `OPTIONS` requests, which the server gives before authentication (browsers
 * send preflights without credentials). Built once from config; per request it only looks up.
 */
import type { CorsConfig } from '../config/types.js';

/** Response headers a browser script may read (ids, trace, rate-limit state). */
const EXPOSE = [
  'x-request-id',
  'traceparent',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
].join(', ');

/** What a browser may list in `access-control-request-headers`: tokens and commas only. */
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

export class Cors {
  private readonly any: boolean;
  private readonly origins: Set<string>;
  private readonly anyHeader: boolean;
  private readonly headers: string;

  constructor(private readonly cfg: CorsConfig) {
    this.any = cfg.allowedOrigins.includes('*');
    this.origins = new Set(cfg.allowedOrigins);
    this.anyHeader = cfg.allowedHeaders.includes('*');
    this.headers = cfg.allowedHeaders.filter((h) => h !== '*').join(', ');
  }

  get enabled(): boolean {
    return this.cfg.allowedOrigins.length > 0;
  }

  /** The allow-origin value for `origin`, or undefined when it is not allowed. */
  private allowOrigin(origin: string): string | undefined {
    if (origin === '') return undefined;
    if (this.any) return '*';
    return this.origins.has(origin.toLowerCase()) ? origin : undefined;
  }

  /** Whether a page at `origin` may call (a WebSocket handshake checks it; browsers apply no CORS there). */
  allowsOrigin(origin: string): boolean {
    return this.enabled && this.allowOrigin(origin) !== undefined;
  }

  /** Headers for a normal (non-preflight) response; writes into `out`. */
  apply(origin: string, out: Record<string, string>): void {
    if (!this.enabled) return;
    // Answers differ by Origin unless every origin gets '*': tell caches.
    if (!this.any) out.vary = 'Origin';
    const allow = this.allowOrigin(origin);
    if (allow === undefined) return;
    out['access-control-allow-origin'] = allow;
    out['access-control-expose-headers'] = EXPOSE;
  }

  /**
   * Headers for a preflight answer, or null when it is not a CORS preflight for an allowed origin
   * (the caller then answers a plain OPTIONS with `allow`).
   */
  preflight(origin: string, requestMethod: string, requestHeaders: string, allow: readonly string[]): Record<string, string> | null {
    if (!this.enabled || requestMethod === '') return null;
    const allowOrigin = this.allowOrigin(origin);
    if (allowOrigin === undefined) return null;
    const out: Record<string, string> = {
      'access-control-allow-origin': allowOrigin,
      'access-control-allow-methods': [...allow, 'OPTIONS'].join(', '),
      'access-control-max-age': String(this.cfg.maxAgeSeconds),
    };
    if (!this.any) out.vary = 'Origin';
    const asked = requestHeaders.trim();
    if (this.anyHeader) {
      if (asked !== '' && asked.length <= 2048 && HEADER_LIST.test(asked)) out['access-control-allow-headers'] = asked;
    } else if (this.headers !== '') {
      out['access-control-allow-headers'] = this.headers;
    }
    return out;
  }
}
