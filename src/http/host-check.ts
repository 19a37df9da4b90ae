/**
 * Checks the `Host` header against `server.allowed_hosts` (already lower-cased and resolved, see
 * src/config/allowed-hosts.ts). Runs first for every request, before CORS, auth and routing.
 */

interface HostPort {
  host: string;
  /** Empty when the header (or entry) names no port. */
  port: string;
}

/** `Name:8080` -> {host: 'name', port: '8080'}; `[::1]:80` -> {host: '[::1]', port: '80'}; null if malformed. */
function split(value: string): HostPort | null {
  const v = value.trim().toLowerCase();
  let host: string;
  let rest: string;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0) return null;
    host = v.slice(0, end + 1);
    rest = v.slice(end + 1);
  } else {
    const colon = v.indexOf(':');
    host = colon < 0 ? v : v.slice(0, colon);
    rest = colon < 0 ? '' : v.slice(colon);
  }
  if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
  // `localhost.` is the same name as `localhost` (a fully qualified name with its root dot).
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '') return null;
  return { host, port: rest.slice(1) };
}

/** Compiled once at start-up: returns whether a request's Host header value is allowed. */
export function compileHostCheck(allowed: readonly string[]): (hostHeader: string) => boolean {
  if (allowed.includes('*')) return () => true;
  const exact: HostPort[] = [];
  const suffixes: HostPort[] = [];
  for (const entry of allowed) {
    const wildcard = entry.startsWith('*.');
    const hp = split(wildcard ? entry.slice(1) : entry);
    if (!hp) throw new Error(`server.allowed_hosts: cannot read entry ${JSON.stringify(entry)}`);
    (wildcard ? suffixes : exact).push(hp);
  }
  const portOk = (entry: HostPort, got: HostPort) => entry.port === '' || entry.port === got.port;
  return (hostHeader) => {
    const got = split(hostHeader);
    if (!got) return false;
    if (exact.some((e) => e.host === got.host && portOk(e, got))) return true;
    return suffixes.some((e) => got.host.endsWith(e.host) && got.host.length > e.host.length && portOk(e, got));
  };
}
