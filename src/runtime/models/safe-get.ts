/**
 * The one way a pull reaches the network: a GET that follows at most `maxRedirects` redirects and
 * checks every hop before connecting. A hub answer can redirect anywhere, so a pull could otherwise
 * be turned into a request to the cloud metadata service (169.254.169.254), a database on the
 * private network or an admin port on loopback. Each hop must be https (plain http only to a host
 * on the allow-list), and every address the name resolves to must be a public unicast address
 * unless the host or address is on `allowedPrivateHosts`. The check runs in the socket's own DNS
 * lookup, so the address checked is the address connected to (no DNS-rebinding window).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { InferFluxError } from '../../errors.js';

export interface NetPolicy {
  /**
   * Host names (matched exactly, lower case), IPs or CIDRs a pull may reach although they are
   * loopback, private or link-local (and over plain http). Defaults to `[]`.
   */
  readonly allowedPrivateHosts: readonly string[];
  /** Redirects followed per request. Defaults to `5`. */
  readonly maxRedirects?: number;
  /** Milliseconds without a byte before the request fails. Defaults to `30000`. */
  readonly idleTimeoutMs?: number;
}

/**
 * A bearer token for one origin (the hub's). It goes only to a hop whose origin (scheme, host and
 * port) is exactly that one: a hub redirects downloads to a CDN on another host, and the token
 * must never reach it (nor any host a hostile redirect names).
 */
export interface OriginCredential {
  /** `URL.origin` of the hub, e.g. `https://huggingface.co`. */
  readonly origin: string;
  /** The token (HF_TOKEN), or null to send none. */
  readonly token: string | null;
}

export interface GetResult {
  res: IncomingMessage;
  /** The URL that answered (after redirects). */
  url: URL;
}

function refuse(message: string): InferFluxError {
  return new InferFluxError('download_refused', message);
}

function bareHost(url: URL): string {
  return url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/** True when `host` (a name) or `address` (an IP) is on the allow-list. */
export function onAllowList(list: readonly string[], host: string, address: string | null): boolean {
  for (const raw of list) {
    const entry = raw.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
    if (entry === host) return true;
    if (address === null) continue;
    try {
      const ip = ipaddr.process(address);
      if (entry.includes('/') && ipaddr.isValidCIDR(entry)) {
        const [net, bits] = ipaddr.parseCIDR(entry);
        if (ip.kind() === net.kind() && ip.match(net, bits)) return true;
      } else if (ipaddr.isValid(entry) && ipaddr.process(entry).toString() === ip.toString()) {
        return true;
      }
    } catch {
      // Not an IP entry; names were compared above.
    }
  }
  return false;
}

/** Why `address` may not be reached, or null when it may (public unicast, or allow-listed). */
export function addressRefusal(policy: NetPolicy, host: string, address: string): string | null {
  let range: string;
  try {
    range = ipaddr.process(address).range();
  } catch {
    return `${address} is not an IP address`;
  }
  if (range === 'unicast' || onAllowList(policy.allowedPrivateHosts, host, address)) return null;
  return `${host} resolves to ${address} (${range}), which a pull may not reach; list it in pull.allowed_private_hosts (INFERFLUX_PULL_ALLOWED_HOSTS) to allow it`;
}

/** Checks a URL before any connection: scheme, credentials, and an IP-literal host's range. */
export function checkUrl(policy: NetPolicy, url: URL): void {
  const host = bareHost(url);
  if (url.username || url.password) throw refuse(`refusing ${url.origin}: credentials in the URL`);
  if (url.protocol === 'https:') {
    // fall through to the address check
  } else if (url.protocol === 'http:') {
    if (!onAllowList(policy.allowedPrivateHosts, host, ipaddr.isValid(host) ? host : null)) {
      throw refuse(`refusing plain http to ${url.host}: downloads use https (http only to hosts in pull.allowed_private_hosts)`);
    }
  } else {
    throw refuse(`refusing ${url.protocol} URL ${JSON.stringify(url.href.slice(0, 200))}: only https (and http to allow-listed hosts)`);
  }
  if (ipaddr.isValid(host)) {
    const why = addressRefusal(policy, host, host);
    if (why) throw refuse(`refusing ${url.origin}: ${why}`);
  }
}

/** The socket's DNS lookup, refusing the connection when any resolved address is not allowed. */
function checkedLookup(policy: NetPolicy): LookupFunction {
  return ((hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      for (const a of addresses) {
        const why = addressRefusal(policy, hostname.toLowerCase(), a.address);
        if (why) return callback(refuse(`refusing ${hostname}: ${why}`) as unknown as NodeJS.ErrnoException, '', 0);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  }) as LookupFunction;
}

function requestOnce(policy: NetPolicy, url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(url, { method: 'GET', headers: { 'user-agent': 'inferflux-pull', ...headers }, lookup: checkedLookup(policy), signal });
    req.setTimeout(policy.idleTimeoutMs ?? 30_000, () => req.destroy(new InferFluxError('download_failed', `${url.host} sent nothing for ${(policy.idleTimeoutMs ?? 30_000) / 1000} s`)));
    req.once('response', resolve);
    req.once('error', (err) => {
      // The lookup's refusal arrives wrapped by net; keep our error (code and message).
      reject(err instanceof InferFluxError ? err : new InferFluxError('download_failed', `cannot reach ${url.host}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err }));
    });
    req.end();
  });
}

/** The headers for one hop: `authorization` only when the hop is on the credential's origin. */
export function hopHeaders(headers: Record<string, string>, url: URL, credential: OriginCredential | null): Record<string, string> {
  const out: Record<string, string> = {};
  // Whatever the caller passed, authorization is decided here, per hop.
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'authorization') out[k] = v;
  if (credential !== null && credential.token !== null && url.origin === credential.origin) out.authorization = `Bearer ${credential.token}`;
  return out;
}

/**
 * The error for a 401 or 403 from the hub itself: the repository is gated or private (or, to
 * an anonymous caller, may not exist: the hub answers 401 rather than say which).
 */
export function hubAccessDenied(credential: OriginCredential, status: number, what: string): InferFluxError {
  const why =
    credential.token === null
      ? 'it is gated or private (or does not exist); set HF_TOKEN to a hub token with access to it'
      : 'the token in HF_TOKEN has no access to it (accept the repository\'s terms on the hub, or use a token that can read it)';
  return new InferFluxError('hub_access_denied', `${credential.origin} refused ${what} (HTTP ${status}): ${why}`, { param: 'model' });
}

/**
 * GET `url`, following redirects within the policy. The caller reads (or `resume()`s) the final
 * response; redirect bodies are discarded here. Headers in `headers` go to every hop; the
 * credential's token only to hops on its origin (see `OriginCredential`).
 */
export async function safeGet(
  policy: NetPolicy,
  url: URL,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
  credential: OriginCredential | null = null,
): Promise<GetResult> {
  const max = policy.maxRedirects ?? 5;
  let current = url;
  for (let hop = 0; ; hop++) {
    checkUrl(policy, current);
    const res = await requestOnce(policy, current, hopHeaders(headers, current, credential), signal);
    const status = res.statusCode ?? 0;
    if (status < 300 || status >= 400 || status === 304) return { res, url: current };
    res.resume();
    const location = res.headers.location;
    if (!location) throw new InferFluxError('download_failed', `${current.host} answered ${status} without a Location`);
    if (hop >= max) throw refuse(`more than ${max} redirects starting at ${url.origin}`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new InferFluxError('download_failed', `${current.host} redirected to an invalid URL`);
    }
    current = next;
  }
}
