/**
 * The one error a bad configuration raises: it names the key path, so start-up can say exactly
 * which value to fix. Its own module so every config file (and start-up code outside config)
 * can throw it without importing the loader.
 */
export class ConfigError extends Error {
  /** Dotted key path of the offending value, e.g. `server.port`. */
  readonly key: string;
  constructor(key: string, message: string) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}
