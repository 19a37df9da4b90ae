/**
 * URLs the server itself fetches (OIDC discovery and JWKS): checked when the config is read, so
 * a plain-http identity provider on another host fails start-up instead of the first request.
 */

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** https, or http to loopback only. Throws a message naming what is wrong. */
export function checkFetchUrl(raw: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${what} is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return url;
  throw new Error(`${what} must be https:// (plain http only to loopback): ${raw}`);
}

