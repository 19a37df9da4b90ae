/**
 * Whether requests must authenticate, decided once at start-up from `auth.enabled`, the keys the
 * configuration and the policy store hold, OIDC and the bind address. Pure: main.ts logs the
 * warning it returns and stops on the ConfigError it throws.
 */
import { ConfigError } from '../config/errors.js';
import type { AuthConfig } from '../config/types.js';

export interface AuthDecision {
  enabled: boolean;
  /** A loud start-up line when the server runs without authentication; null when it does not. */
  warning: string | null;
  /** One line describing what authenticates requests. */
  summary: string;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * @param auth the resolved `auth` section
 * @param keyCount every key the request path would accept (config, env and policy store)
 * @param host `server.host`
 */
export function decideAuth(auth: Pick<AuthConfig, 'enabled' | 'enabledSource' | 'oidc'>, keyCount: number, host: string): AuthDecision {
  const hasOidc = auth.oidc !== null;
  const what = [keyCount > 0 ? `${keyCount} API key(s)` : '', hasOidc ? `OIDC (issuer ${auth.oidc!.issuer})` : ''].filter(Boolean).join(' + ');
  if (auth.enabled === false) {
    return {
      enabled: false,
      warning:
        `authentication is DISABLED by auth.enabled=false (from ${auth.enabledSource})` +
        `${what ? `, although ${what} are configured` : ''}: every caller has every scope, including admin.`,
      summary: 'auth off',
    };
  }
  if (keyCount > 0 || hasOidc) return { enabled: true, warning: null, summary: `auth on: ${what}` };
  if (auth.enabled === true) {
    throw new ConfigError(
      'auth.enabled',
      `is true (from ${auth.enabledSource}) but no API key (auth.api_keys, INFERFLUX_API_KEYS, INFERCTL_API_KEY, policy store) and no OIDC issuer (auth.oidc.issuer, INFERFLUX_OIDC_ISSUER) is configured`,
    );
  }
  if (!isLoopbackHost(host)) {
    throw new ConfigError(
      'auth.enabled',
      `no API key or OIDC issuer is configured and server.host is ${host}: refusing to serve the network without authentication. ` +
        'Configure auth.api_keys / INFERFLUX_API_KEYS / auth.oidc, or set auth.enabled: false explicitly',
    );
  }
  return {
    enabled: false,
    warning:
      `authentication is OFF: no API key or OIDC issuer is configured (auth.enabled=auto), so every caller on ${host} ` +
      'has every scope, including admin. Set INFERFLUX_API_KEYS or auth.api_keys to require keys.',
    summary: 'auth off (no credentials configured)',
  };
}
