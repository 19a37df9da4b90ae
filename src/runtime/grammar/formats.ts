/**
 * GBNF for the content of JSON strings with a `format`, each a bounded subset of what ajv-formats
 * ("full" mode) accepts, so every generated value validates and every one ends:
 *   - date: YYYY-MM-DD with the real month lengths; 29 February is never generated (the grammar
 *     cannot know leap years);
 *   - time: HH:MM:SS, optional fraction of up to 6 digits, then `Z` or `+HH:MM`/`-HH:MM`
 *     (ajv-formats requires a time zone); no leap second;
 *   - date-time: date `T` time;
 *   - uuid: lowercase 8-4-4-4-12 hex;
 *   - email: `local@domain.tld` with lowercase letters and digits, an optional dot in the local
 *     part, one or two domain labels and a 2-6 letter top-level domain;
 *   - uri: `https://host.tld` and up to four path segments of unreserved characters.
 */
import type { GbnfBuilder } from './gbnf-builder.js';

export const SUPPORTED_FORMATS = ['date', 'date-time', 'time', 'uuid', 'email', 'uri'] as const;
export type SupportedFormat = (typeof SUPPORTED_FORMATS)[number];

export function isSupportedFormat(f: string): f is SupportedFormat {
  return (SUPPORTED_FORMATS as readonly string[]).includes(f);
}

/** Rule name for the string content of the format (rules are shared by the builder). */
export function formatGbnf(format: SupportedFormat, b: GbnfBuilder): string {
  const date = (): string => {
    const d28 = '("0" [1-9] | "1" [0-9] | "2" [0-8])';
    const body = [
      '[0-9]{4} "-" (',
      `("01" | "03" | "05" | "07" | "08" | "10" | "12") "-" (${d28} | "29" | "30" | "31")`,
      `| ("04" | "06" | "09" | "11") "-" (${d28} | "29" | "30")`,
      `| "02" "-" ${d28})`,
    ].join(' ');
    return b.rule('fmt-date', body);
  };
  const time = (): string => {
    const hh = '([01] [0-9] | "2" [0-3])';
    const mm = '[0-5] [0-9]';
    return b.rule('fmt-time', `${hh} ":" ${mm} ":" ${mm} ("." [0-9]{1,6})? ("Z" | [+-] ${hh} ":" ${mm})`);
  };
  switch (format) {
    case 'date':
      return date();
    case 'time':
      return time();
    case 'date-time':
      return b.rule('fmt-date-time', `${date()} "T" ${time()}`);
    case 'uuid':
      return b.rule('fmt-uuid', '[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}');
    case 'email':
      return b.rule('fmt-email', '[a-z0-9]{1,16} ("." [a-z0-9]{1,16})? "@" [a-z0-9]{1,16} ("." [a-z0-9]{1,16})? "." [a-z]{2,6}');
    case 'uri': {
      const host = '[a-z0-9]{1,16} ("." [a-z0-9]{1,16})? "." [a-z]{2,6}';
      return b.rule('fmt-uri', `"https://" ${host} ("/" [a-zA-Z0-9._~\\-]{1,16}){0,4}`);
    }
  }
}
