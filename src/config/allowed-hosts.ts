/**
 * The effective `server.allowed_hosts`. `auto` protects the common case, a server on a laptop
 * bound to loopback with authentication off: a web page the user opens could otherwise point its
 * own DNS name at 127.0.0.1 and call the API from the browser (DNS rebinding, the class of
 * Ollama's and llama.cpp's advisories). The browser then sends the attacker's name as `Host`, so
 * answering only the loopback names stops it. A server bound to another address is meant to be
 * reached under names we cannot guess, so `auto` allows any host there.
 */
import { isIPv4 } from 'node:net';

/** The names a browser on this machine uses for a loopback server. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

export function isLoopbackAddress(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return isIPv4(v4) && v4.startsWith('127.');
}

/** Lower-cased entries (host names are case-insensitive); `auto` resolved against the bind address. */
export function resolveAllowedHosts(raw: readonly string[] | 'auto', bindHost: string): string[] {
  if (raw === 'auto') return isLoopbackAddress(bindHost) ? [...LOOPBACK_HOSTS] : ['*'];
  return raw.map((h) => h.trim().toLowerCase());
}
