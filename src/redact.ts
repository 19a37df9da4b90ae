/**
 * Masks the password of every `scheme://user:password@` in a text, for logs and error messages:
 * connection URLs (Redis, an OIDC issuer) may carry credentials, and neither a start-up line nor
 * a config error may print them.
 */
export function redactUrlPasswords(text: string): string {
  return text.replace(/(\/\/[^/:@\s"]*:)[^@\s/"]+@/g, '$1***@');
}
