/**
 * Exact digit grammars for bounded JSON numbers, so `minimum`/`maximum`/`exclusive*` hold by
 * construction instead of by luck.
 *
 * Every generated number is bounded, which also keeps values exact in a JavaScript double:
 *   - `integer`: at most 15 digits (|n| <= 10^15 - 1, inside Number.MAX_SAFE_INTEGER), never a
 *     fraction or an exponent;
 *   - `number`: an integer part of at most 9 digits and an optional fraction of at most 6 digits,
 *     never an exponent. With at most 15 significant digits every such decimal is the shortest
 *     form of a distinct double, so comparing decimals here gives the same answer as ajv's double
 *     comparison, exclusive bounds included.
 * The bounds are parsed from the numbers' decimal text, not compared as floats. Integer ranges
 * are split by digit count and then by leading digit, the usual range-to-regex construction
 * (llama.cpp's json-schema-to-grammar does the same for integers).
 */
import { gbnfLiteral } from './char-set.js';

export const MAX_INTEGER_DIGITS = 15;
export const MAX_NUMBER_INT_DIGITS = 9;
export const MAX_FRACTION_DIGITS = 6;

export interface Bound {
  value: number;
  exclusive: boolean;
}

/** A non-negative decimal: integer part and fraction digits (no trailing zeros). */
interface Decimal {
  int: number;
  frac: string;
}

function alt(options: string[]): string | null {
  if (options.length === 0) return null;
  if (options.length === 1) return options[0]!;
  return `(${options.join(' | ')})`;
}

function seq(...parts: string[]): string {
  return parts.filter((p) => p !== '').join(' ');
}

function digitClass(lo: number, hi: number): string {
  return lo === hi ? `[${lo}]` : `[${lo}-${hi}]`;
}

function anyDigits(min: number, max: number): string {
  if (max === 0) return '';
  if (min === max) return min === 1 ? '[0-9]' : `[0-9]{${min}}`;
  return `[0-9]{${min},${max}}`;
}

/** Equal-length digit strings x <= y: every digit string of that length between them. */
function sameLength(x: string, y: string): string {
  if (x.length === 0) return '';
  if (x[0] === y[0]) return seq(`"${x[0]}"`, sameLength(x.slice(1), y.slice(1)));
  const x0 = Number(x[0]);
  const y0 = Number(y[0]);
  const xr = x.slice(1);
  const yr = y.slice(1);
  const r = xr.length;
  const xFloor = /^0*$/.test(xr);
  const yCeil = /^9*$/.test(yr);
  const options: string[] = [];
  if (!xFloor) options.push(seq(`"${x0}"`, sameLength(xr, '9'.repeat(r))));
  const lo = xFloor ? x0 : x0 + 1;
  const hi = yCeil ? y0 : y0 - 1;
  if (lo <= hi) options.push(seq(digitClass(lo, hi), anyDigits(r, r)));
  if (!yCeil) options.push(seq(`"${y0}"`, sameLength('0'.repeat(r), yr)));
  return alt(options)!;
}

/** Decimal digit strings without leading zeros for the integers a..b (0 <= a). Null if empty. */
export function uintRange(a: number, b: number): string | null {
  if (a > b) return null;
  const options: string[] = [];
  const la = String(a).length;
  const lb = String(b).length;
  for (let d = la; d <= lb; d++) {
    const lo = Math.max(a, d === 1 ? 0 : 10 ** (d - 1));
    const hi = Math.min(b, 10 ** d - 1);
    if (lo <= hi) options.push(sameLength(String(lo), String(hi)));
  }
  return alt(options);
}

/** Integers lo..hi (inclusive, either sign). Null if empty. */
export function intRange(lo: number, hi: number): string | null {
  const options: string[] = [];
  if (lo < 0) {
    const neg = uintRange(Math.max(1, -hi), -lo);
    if (neg) options.push(seq('"-"', neg));
  }
  if (hi >= 0) {
    const pos = uintRange(Math.max(0, lo), hi);
    if (pos) options.push(pos);
  }
  return alt(options);
}

/** The grammar for a JSON integer within the bounds (each optional). Null if none fits. */
export function integerGrammar(min: Bound | null, max: Bound | null): string | null {
  const limit = 10 ** MAX_INTEGER_DIGITS - 1;
  let lo = -limit;
  let hi = limit;
  if (min) lo = Math.max(lo, min.exclusive ? Math.floor(min.value) + 1 : Math.ceil(min.value));
  if (max) hi = Math.min(hi, max.exclusive ? Math.ceil(max.value) - 1 : Math.floor(max.value));
  return intRange(lo, hi);
}

/** Plain decimal text of a finite number (no exponent). */
export function plainDecimal(x: number): string {
  const s = String(Math.abs(x));
  const m = /^(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  let out = s;
  if (m) {
    const digits = m[1]! + (m[2] ?? '');
    const point = m[1]!.length + Number(m[3]);
    out =
      point <= 0
        ? `0.${'0'.repeat(-point)}${digits}`
        : point >= digits.length
          ? digits + '0'.repeat(point - digits.length)
          : `${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  return (x < 0 ? '-' : '') + out;
}

function toDecimal(x: number): Decimal {
  const [int, frac = ''] = plainDecimal(Math.abs(x)).split('.');
  return { int: Number(int), frac: frac.replace(/0+$/, '') };
}

function nonZero(digits: string): boolean {
  return /[1-9]/.test(digits);
}

/**
 * The optional fraction part (`"." digits`, up to MAX_FRACTION_DIGITS, or nothing) whose value
 * lies between lo and hi (fraction digit strings; null = unbounded on that side). Null if none.
 */
function fractionBetween(lo: string | null, loExcl: boolean, hi: string | null, hiExcl: boolean): string | null {
  const digitAt = (s: string, i: number): number => (i < s.length ? Number(s[i]) : 0);
  // Whether stopping after i digits (the rest zero) keeps the value in range.
  const stopOk = (i: number, tLo: boolean, tHi: boolean): boolean => {
    if (tLo && lo !== null) {
      if (nonZero(lo.slice(i))) return false;
      if (loExcl) return false;
    }
    if (tHi && hi !== null) {
      if (!nonZero(hi.slice(i)) && hiExcl) return false;
    }
    return true;
  };
  const gen = (i: number, tLo: boolean, tHi: boolean): string | null => {
    const options: string[] = [];
    if (i >= 1 && stopOk(i, tLo, tHi)) options.push('""');
    if (i < MAX_FRACTION_DIGITS) {
      const dLo = tLo && lo !== null ? digitAt(lo, i) : 0;
      const dHi = tHi && hi !== null ? digitAt(hi, i) : 9;
      const tightLo = tLo && lo !== null;
      const tightHi = tHi && hi !== null;
      if (dLo <= dHi) {
        if (tightLo && tightHi && dLo === dHi) {
          const rest = gen(i + 1, true, true);
          if (rest) options.push(seq(`"${dLo}"`, rest));
        } else {
          if (tightLo) {
            const rest = gen(i + 1, true, false);
            if (rest) options.push(seq(`"${dLo}"`, rest));
          }
          const mLo = tightLo ? dLo + 1 : dLo;
          const mHi = tightHi ? dHi - 1 : dHi;
          if (mLo <= mHi) options.push(seq(digitClass(mLo, mHi), anyDigits(0, MAX_FRACTION_DIGITS - i - 1)));
          if (tightHi) {
            const rest = gen(i + 1, false, true);
            if (rest) options.push(seq(`"${dHi}"`, rest));
          }
        }
      }
    }
    return alt(options);
  };
  const options: string[] = [];
  if (stopOk(0, true, true)) options.push('""');
  const digits = gen(0, true, true);
  if (digits) options.push(seq('"."', digits));
  return alt(options);
}

/** Non-negative decimals between a and b (a <= b). Null if none. */
function magnitudeRange(a: Decimal, aExcl: boolean, b: Decimal, bExcl: boolean): string | null {
  if (a.int === b.int) {
    const frac = fractionBetween(a.frac, aExcl, b.frac, bExcl);
    return frac === null ? null : seq(gbnfLiteral(String(a.int)), frac);
  }
  const options: string[] = [];
  const first = fractionBetween(a.frac, aExcl, null, false);
  if (first !== null) options.push(seq(gbnfLiteral(String(a.int)), first));
  const middle = uintRange(a.int + 1, b.int - 1);
  if (middle) options.push(seq(middle, fractionBetween(null, false, null, false)!));
  const last = fractionBetween(null, false, b.frac, bExcl);
  if (last !== null) options.push(seq(gbnfLiteral(String(b.int)), last));
  return alt(options);
}

/** The grammar for a JSON number within the bounds (each optional). Null if none fits. */
export function numberGrammar(min: Bound | null, max: Bound | null): string | null {
  const limit = 10 ** MAX_NUMBER_INT_DIGITS;
  let lo: Bound = { value: -limit, exclusive: true };
  let hi: Bound = { value: limit, exclusive: true };
  if (min && (min.value > lo.value || (min.value === lo.value && min.exclusive))) lo = min;
  if (max && (max.value < hi.value || (max.value === hi.value && max.exclusive))) hi = max;
  if (lo.value > hi.value || (lo.value === hi.value && (lo.exclusive || hi.exclusive))) return null;
  const options: string[] = [];
  // Negative values: magnitudes m > 0 with -m in [lo, hi].
  if (lo.value < 0) {
    const mLoExcl = hi.value >= 0 ? true : hi.exclusive;
    const mLo = toDecimal(hi.value >= 0 ? 0 : -hi.value);
    const neg = magnitudeRange(mLo, mLoExcl, toDecimal(-lo.value), lo.exclusive);
    if (neg) options.push(seq('"-"', neg));
  }
  // Zero and positive values.
  if (hi.value > 0 || (hi.value === 0 && !hi.exclusive)) {
    const pLo = lo.value >= 0 ? toDecimal(lo.value) : toDecimal(0);
    const pos = magnitudeRange(pLo, lo.value >= 0 ? lo.exclusive : false, toDecimal(hi.value), hi.exclusive);
    if (pos) options.push(pos);
  }
  return alt(options);
}
