/**
 * PII and secret detectors: pure functions from text to spans. Each detector is a regex for the
 * candidate shape plus a check that removes look-alikes (Luhn for cards, mod-97 for IBANs, digit
 * counts and separators for phones, an entropy floor for generic secrets), so plain numbers such as
 * years, token counts, timestamps, dates and IP addresses are not reported.
 *
 * Offsets are UTF-16 indexes into the text as given (no normalisation), so a redaction replaces
 * exactly the characters that matched.
 */
import type { PiiKind } from '../types.js';

export const PII_KINDS: readonly PiiKind[] = ['email', 'phone', 'credit_card', 'iban', 'secret'];

export interface PiiMatch {
  kind: PiiKind;
  start: number;
  /** Exclusive. */
  end: number;
  /**
   * Where the text the detector needed starts, when before `start`: `token: <value>` reports only
   * the value, but the value is only recognisable with its name, so a stream must not release the
   * name while the value may still be redacted.
   */
  from?: number;
}

/**
 * The longest text a detector needs to see at once, apart from unbroken runs (emails, secrets)
 * that the streaming filter holds back whole. Phone, card and IBAN shapes with separators fit.
 */
export const PII_MAX_SPAN = 64;

// ---- checksums ---------------------------------------------------------------------------------

/** Luhn check over a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** ISO 13616 check: move the first four characters to the end, letters to 10..35, mod 97 == 1. */
export function ibanValid(iban: string): boolean {
  const s = iban.toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(s)) return false;
  const moved = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const c = ch.charCodeAt(0);
    const v = c >= 65 ? c - 55 : c - 48;
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  return rem === 1;
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

// ---- detectors ---------------------------------------------------------------------------------

interface Detector {
  kind: PiiKind;
  re: RegExp;
  /** Refines a regex match: false drops it; a [start, end] pair narrows it (relative to the text). */
  accept?(m: RegExpExecArray): boolean | [number, number];
}

const EMAIL =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])/g;

/**
 * Phones, three shapes only, so bare digit runs never match:
 * - international: `+` country code, then groups (optionally one in parentheses), 8-15 digits;
 * - an area code in parentheses: `(555) 123-4567`, `(020) 7946 0958`;
 * - national with separators: `555-123-4567` (one separator kind), `020 7946 0958` (trunk 0).
 */
const PHONE = new RegExp(
  [
    String.raw`(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?![\w])`,
    String.raw`(?<![\w(])\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}(?![\w])`,
    String.raw`(?<![\w.+-])\d{3}([-. ])\d{3}\1\d{4}(?![\w]|[.-]\d)`,
    String.raw`(?<![\w.+-])0\d{1,4}[ -]\d{3,4}[ -]?\d{3,4}(?![\w]|[.-]\d)`,
  ].join('|'),
  'g',
);

function acceptPhone(m: RegExpExecArray): boolean {
  const digits = m[0].replace(/\D/g, '');
  if (m[0].startsWith('+')) return digits.length >= 8 && digits.length <= 15;
  return digits.length >= 10 && digits.length <= 11;
}

/** 13-19 digits, single spaces or dashes between digits, issuer prefix 2-6 (timestamps start with 1). */
const CARD = /(?<![\d-])[2-6](?:[ -]?\d){12,18}(?![\d]|-\d)/g;

function acceptCard(m: RegExpExecArray): boolean {
  const digits = m[0].replace(/\D/g, '');
  return digits.length >= 13 && digits.length <= 19 && luhnValid(digits);
}

/** Country code, check digits, then BBAN in groups of four (optionally space-separated). */
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/g;

function acceptIban(m: RegExpExecArray): boolean {
  return ibanValid(m[0].replace(/ /g, ''));
}

/** Vendor key formats with fixed prefixes; each is distinctive enough on its own. */
const SECRET_PREFIXES = [
  String.raw`sk-(?:proj-|ant-|live-)?[A-Za-z0-9_-]{20,}`, // OpenAI, Anthropic
  String.raw`(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}`, // Stripe
  String.raw`gh[pousr]_[A-Za-z0-9]{30,}`, // GitHub tokens
  String.raw`github_pat_[A-Za-z0-9_]{22,}`,
  String.raw`(?:AKIA|ASIA)[A-Z0-9]{16}`, // AWS access key id
  String.raw`xox[abposr]-[A-Za-z0-9-]{10,}`, // Slack
  String.raw`AIza[0-9A-Za-z_-]{35}`, // Google API key
  String.raw`glpat-[A-Za-z0-9_-]{20,}`, // GitLab
  String.raw`hf_[A-Za-z0-9]{30,}`, // Hugging Face
  String.raw`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`, // JWT
  String.raw`-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----`, // PEM
];
const SECRET_PREFIXED = new RegExp(
  String.raw`(?<![A-Za-z0-9_-])(?:` + SECRET_PREFIXES.map((p) => `(?:${p})`).join('|') + String.raw`)(?![A-Za-z0-9_])`,
  'g',
);

/**
 * A long high-entropy value right after a key-ish name (`api_key=...`, `"secret": "..."`,
 * `Authorization: Bearer ...`). Only the value is reported (and redacted).
 */
const SECRET_ASSIGNED =
  /(?<![A-Za-z0-9])(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|access[_-]?token|token|password|passwd|bearer)["']?\s*(?:[:=]|\s)\s*["']?(?:bearer\s+)?([A-Za-z0-9_\-/+=.]{16,})/gi;

function acceptAssigned(m: RegExpExecArray): boolean | [number, number] {
  const value = m[1]!;
  if (entropy(value) < 3.2 || !/[0-9]/.test(value) || !/[A-Za-z]/.test(value)) return false;
  const end = m.index + m[0].length;
  return [end - value.length, end];
}

const DETECTORS: Detector[] = [
  { kind: 'secret', re: SECRET_PREFIXED },
  { kind: 'secret', re: SECRET_ASSIGNED, accept: acceptAssigned },
  { kind: 'iban', re: IBAN, accept: acceptIban },
  { kind: 'credit_card', re: CARD, accept: acceptCard },
  { kind: 'email', re: EMAIL },
  { kind: 'phone', re: PHONE, accept: acceptPhone },
];

/**
 * All PII spans of the enabled kinds, sorted by start, without overlaps (on overlap the earlier
 * detector in the table wins: secrets before IBANs before cards before emails before phones).
 */
export function findPii(text: string, kinds: ReadonlySet<PiiKind>): PiiMatch[] {
  const found: PiiMatch[] = [];
  for (const d of DETECTORS) {
    if (!kinds.has(d.kind)) continue;
    d.re.lastIndex = 0;
    for (let m = d.re.exec(text); m !== null; m = d.re.exec(text)) {
      const verdict = d.accept ? d.accept(m) : true;
      if (verdict === false) continue;
      const [start, end] = verdict === true ? [m.index, m.index + m[0].length] : verdict;
      if (found.some((f) => start < f.end && f.start < end)) continue;
      found.push(start > m.index ? { kind: d.kind, start, end, from: m.index } : { kind: d.kind, start, end });
    }
  }
  return found.sort((a, b) => a.start - b.start);
}

/**
 * Shapes a text can end in while a match of a kind may still be forming, each anchored at the end
 * of the text and searched on the last PII_MAX_SPAN characters. They over-approximate: holding a
 * little too much only delays text, holding too little would let the start of a match out
 * before the rest arrives.
 */
const LIVE_SPACED: Record<PiiKind, RegExp[]> = {
  // `key: "value` — the name is whole, its value may still come or grow.
  secret: [
    /(?<![A-Za-z0-9])(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|access[_-]?token|token|password|passwd|bearer)["']?\s*(?:[:=]\s*)?["']?(?:bearer\s*)?[A-Za-z0-9_\-/+=.]*$/i,
    /-[-A-Z ]*$/, // a PEM header being written
  ],
  // `GB`, `GB8`, then `GB82 WEST ...` with or without spaces.
  iban: [/(?<![A-Za-z0-9])[A-Z]{1,2}\d?$/, /(?<![A-Za-z0-9])[A-Z]{2}\d{2}[ A-Z0-9]*$/],
  // Digits with the separators phones and cards allow, or a `+`/`(` about to start one.
  phone: [/[+(]?\d[\d ().+-]*$/, /[+(]$/],
  credit_card: [/\d[\d -]*$/],
  // Unbounded by PII_MAX_SPAN: see LIVE_EMAIL.
  email: [],
};

/** A local part (at most 64 characters, starting a run) still growing, or its domain. */
const LIVE_EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}(?:@[A-Za-z0-9.-]{0,255})?$/;
const EMAIL_WINDOW = 64 + 1 + 256;

/** How vendor keys start (SECRET_PREFIXES); a run that starts like one may still become one. */
const SECRET_STARTS = [
  'sk-', 'sk_live_', 'sk_test_', 'rk_live_', 'rk_test_', 'pk_live_', 'pk_test_', 'ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_',
  'github_pat_', 'AKIA', 'ASIA', 'xoxa-', 'xoxb-', 'xoxp-', 'xoxo-', 'xoxs-', 'xoxr-', 'AIza', 'glpat-', 'hf_', 'eyJ',
];
/** Names SECRET_ASSIGNED recognises, to hold one while it is being written. */
const SECRET_NAMES = [
  'api_key', 'api-key', 'apikey', 'secret', 'secret_key', 'secret-key', 'secretkey', 'access_key', 'access-key', 'accesskey',
  'auth_token', 'auth-token', 'authtoken', 'access_token', 'access-token', 'accesstoken', 'token', 'password', 'passwd', 'bearer',
];
/** Vendor keys and JWTs can be long; past this a run is released (memory stays bounded). */
export const PII_MAX_RUN = 512;

const KEY_CHAR = /[A-Za-z0-9_.-]/;
const NAME_CHAR = /[A-Za-z_-]/;

/** Earliest start of a trailing run that is, or may still become, a vendor key or a secret's name. */
function liveSecretRun(text: string): number {
  let r = text.length;
  while (r > 0 && text.length - r < PII_MAX_RUN && KEY_CHAR.test(text[r - 1]!)) r--;
  // A key starts where the run starts or after a dot inside it (`(?<![A-Za-z0-9_-])`).
  for (let i = r; i < text.length; i++) {
    if (i > r && text[i - 1] !== '.') continue;
    const s = text.slice(i);
    if (SECRET_STARTS.some((p) => s.startsWith(p) || p.startsWith(s))) return i;
  }
  // A name starts after any character that is not a letter or digit (`(?<![A-Za-z0-9])`).
  let n = text.length;
  while (n > 0 && text.length - n < 32 && NAME_CHAR.test(text[n - 1]!)) n--;
  for (let i = n; i < text.length; i++) {
    if (i > 0 && /[A-Za-z0-9]/.test(text[i - 1]!)) continue;
    const s = text.slice(i).toLowerCase();
    if (SECRET_NAMES.some((k) => k.startsWith(s))) return i;
  }
  return text.length;
}

/**
 * The earliest index of `text` where a match of an enabled kind could start and still be growing
 * at the end (text.length when none can): a stream must hold `text.slice(index)` back. So prose
 * is held one word behind (the word may be an email's local part) and a number until the next
 * character shows it is no phone or card.
 */
export function piiLiveStart(text: string, kinds: ReadonlySet<PiiKind>): number {
  const floor = Math.max(0, text.length - PII_MAX_SPAN);
  const tail = text.slice(floor);
  let start = text.length;
  for (const kind of kinds) {
    for (const re of LIVE_SPACED[kind]) {
      const m = re.exec(tail);
      if (m) start = Math.min(start, floor + m.index);
    }
  }
  if (kinds.has('email')) {
    const from = Math.max(0, text.length - EMAIL_WINDOW);
    const m = LIVE_EMAIL.exec(text.slice(from));
    if (m) start = Math.min(start, from + m.index);
  }
  if (kinds.has('secret')) start = Math.min(start, liveSecretRun(text));
  return start;
}

export function redactionOf(kind: PiiKind): string {
  return `[REDACTED:${kind}]`;
}

/** Replaces each span with `[REDACTED:<kind>]`; spans must be sorted and disjoint (as findPii returns). */
export function redact(text: string, matches: readonly PiiMatch[]): string {
  if (matches.length === 0) return text;
  let out = '';
  let at = 0;
  for (const m of matches) {
    out += text.slice(at, m.start) + redactionOf(m.kind);
    at = m.end;
  }
  return out + text.slice(at);
}
