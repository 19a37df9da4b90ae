/**
 * Sets of Unicode code points as sorted, disjoint, inclusive ranges, and their GBNF form inside a
 * JSON string.
 *
 * A character the grammar lets the model write inside a JSON string must decode (JSON.parse) to
 * exactly one code point of the set, so:
 *   - `"` and `\` are written as the escapes `\"` and `\\`;
 *   - control characters (U+0000-U+001F) are never generated (they would need escapes; leaving
 *     them out only narrows what the model may write, never what is valid);
 *   - surrogates (U+D800-U+DFFF) and code points above U+10FFFF are excluded, and the class is
 *     written positively, so llama.cpp's grammar rejects the UTF-8 byte prefixes of such code
 *     points (its partial-UTF-8 check only rules out a prefix whose every completion is outside a
 *     positive class).
 */
export type Range = readonly [number, number];
export type CharSet = readonly Range[];

export const MAX_CODE_POINT = 0x10ffff;

/** Every code point a JSON string can hold as a generated character. */
export const STRING_UNIVERSE: CharSet = [
  [0x20, 0xd7ff],
  [0xe000, MAX_CODE_POINT],
];

export function normalize(ranges: Iterable<Range>): CharSet {
  const sorted = [...ranges].filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export function union(...sets: CharSet[]): CharSet {
  return normalize(sets.flat());
}

export function complement(set: CharSet, universe: CharSet = [[0, MAX_CODE_POINT]]): CharSet {
  return intersect(universe, invert(set));
}

function invert(set: CharSet): CharSet {
  const out: [number, number][] = [];
  let next = 0;
  for (const [a, b] of normalize(set)) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

export function intersect(a: CharSet, b: CharSet): CharSet {
  const out: [number, number][] = [];
  for (const [a0, a1] of a) {
    for (const [b0, b1] of b) {
      const lo = Math.max(a0, b0);
      const hi = Math.min(a1, b1);
      if (lo <= hi) out.push([lo, hi]);
    }
  }
  return normalize(out);
}

export function isEmpty(set: CharSet): boolean {
  return set.length === 0;
}

export function single(cp: number): CharSet {
  return [[cp, cp]];
}

export const DIGITS: CharSet = [[0x30, 0x39]];
export const WORD: CharSet = normalize([
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
]);
/** JavaScript's `\s` (ECMAScript WhiteSpace + LineTerminator). */
export const SPACE: CharSet = normalize([
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
]);
/** JavaScript's `.` without the `s` flag: anything but a line terminator. */
export const DOT: CharSet = complement(normalize([
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
]));

/** One code point as a GBNF character (inside a literal or a class). */
export function gbnfChar(cp: number): string {
  if (cp >= 0x20 && cp < 0x7f) {
    const c = String.fromCharCode(cp);
    if (c === '"' || c === '\\' || c === '[' || c === ']' || c === '-') return `\\${c}`;
    // llama.cpp's parse_char knows no `\^`; a `^` first in a class would negate it.
    return c === '^' ? '\\x5e' : c;
  }
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\U${cp.toString(16).padStart(8, '0')}`;
}

/** A GBNF string literal for `text` (any code points). */
export function gbnfLiteral(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    out += gbnfChar(cp);
  }
  return out + '"';
}

/** A positive GBNF character class for the set (which must be non-empty). */
export function gbnfClass(set: CharSet): string {
  let out = '[';
  for (const [a, b] of set) {
    out += a === b ? gbnfChar(a) : `${gbnfChar(a)}-${gbnfChar(b)}`;
  }
  return out + ']';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * GBNF for one JSON-string character whose decoded code point is in `set`: a class of the plain
 * characters plus the escapes `\"` and `\\` when the set holds those. Returns null for a set
 * that leaves nothing to generate.
 */
export function jsonStringCharGbnf(set: CharSet): string | null {
  const usable = intersect(set, STRING_UNIVERSE);
  const plain = intersect(usable, complement(normalize([[QUOTE, QUOTE], [BACKSLASH, BACKSLASH]])));
  const alts: string[] = [];
  if (!isEmpty(plain)) alts.push(gbnfClass(plain));
  if (contains(usable, QUOTE)) alts.push('"\\\\\\""');
  if (contains(usable, BACKSLASH)) alts.push('"\\\\\\\\"');
  if (alts.length === 0) return null;
  return alts.length === 1 ? alts[0]! : `(${alts.join(' | ')})`;
}

export function contains(set: CharSet, cp: number): boolean {
  return set.some(([a, b]) => a <= cp && cp <= b);
}
