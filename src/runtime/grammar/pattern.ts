/**
 * JSON Schema `pattern` (an ECMAScript regular expression with the `u` flag, as ajv runs it) to
 * GBNF for the content of a JSON string.
 *
 * The supported subset, everything else refused with a message that names it:
 *   - literal characters and escaped syntax characters (`\.`, `\(`, `\\`, `\/`, ...);
 *   - `\t \n \r \f \v \0`, `\xHH`, `\uHHHH`, `\u{H...}`;
 *   - classes `[...]` and `[^...]` with ranges and the escapes above;
 *   - `\d \w \s` and their negations `\D \W \S`, inside and outside classes; `.`;
 *   - quantifiers `? * + {m} {m,} {m,n}` (a lazy `?` after one is accepted: same language), with
 *     m and n at most MAX_PATTERN_REPEAT;
 *   - groups `( )`, `(?: )` and named groups `(?<name> )`, alternation `|`;
 *   - anchors: `^` only first and `$` only last. A pattern without them matches anywhere (JSON
 *     Schema semantics), so the grammar allows any text before and/or after; such strings are
 *     unbounded.
 * Refused: backreferences, lookaround, `\b \B`, `\p{...}`, `\cX`, anchors elsewhere, and a
 * top-level alternation together with anchors (write `^(a|b)$`).
 * Characters a JSON string cannot hold as generated text (controls, surrogates) are left out of
 * classes; a pattern that then allows nothing is refused.
 */
import {
  type CharSet,
  DIGITS,
  DOT,
  SPACE,
  STRING_UNIVERSE,
  WORD,
  complement,
  jsonStringCharGbnf,
  normalize,
  single,
  union,
} from './char-set.js';
import type { GbnfBuilder } from './gbnf-builder.js';

export const MAX_PATTERN_REPEAT = 1000;

type Node =
  | { k: 'chars'; set: CharSet }
  | { k: 'seq'; items: Node[] }
  | { k: 'alt'; options: Node[] }
  | { k: 'repeat'; node: Node; min: number; max: number };

/** Thrown for an unsupported or invalid pattern; the compiler turns it into a 400. */
export class PatternError extends Error {}

class Parser {
  private i = 0;
  private readonly cps: number[];

  constructor(readonly source: string) {
    this.cps = [...source].map((c) => c.codePointAt(0)!);
  }

  parse(): { node: Node; start: boolean; end: boolean } {
    let start = false;
    let end = false;
    if (this.peek() === 0x5e /* ^ */) {
      start = true;
      this.i++;
    }
    let lastIsEnd = false;
    if (this.cps.length > this.i && this.cps[this.cps.length - 1] === 0x24 /* $ */ && !this.escapedAt(this.cps.length - 1)) {
      end = true;
      this.cps.pop();
      lastIsEnd = true;
    }
    const node = this.alternation();
    if (this.i < this.cps.length) throw new PatternError(`unexpected '${String.fromCodePoint(this.cps[this.i]!)}'`);
    if ((start || lastIsEnd) && node.k === 'alt') {
      throw new PatternError('anchors around a top-level alternation (write ^(a|b)$ instead of ^a|b$)');
    }
    return { node, start, end };
  }

  /** Whether the code point at `idx` is escaped by an odd run of backslashes before it. */
  private escapedAt(idx: number): boolean {
    let n = 0;
    for (let j = idx - 1; j >= 0 && this.cps[j] === 0x5c; j--) n++;
    return n % 2 === 1;
  }

  private peek(offset = 0): number | undefined {
    return this.cps[this.i + offset];
  }

  private alternation(): Node {
    const options = [this.sequence()];
    while (this.peek() === 0x7c /* | */) {
      this.i++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0]! : { k: 'alt', options };
  }

  private sequence(): Node {
    const items: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === 0x7c || c === 0x29 /* ) */) break;
      const atom = this.atom();
      items.push(this.quantified(atom));
    }
    return items.length === 1 ? items[0]! : { k: 'seq', items };
  }

  private quantified(atom: Node): Node {
    const c = this.peek();
    let min: number;
    let max: number;
    if (c === 0x2a /* * */) [min, max] = [0, Infinity];
    else if (c === 0x2b /* + */) [min, max] = [1, Infinity];
    else if (c === 0x3f /* ? */) [min, max] = [0, 1];
    else if (c === 0x7b /* { */) {
      const rest = String.fromCodePoint(...this.cps.slice(this.i));
      const m = /^\{(\d+)(,(\d*))?\}/.exec(rest);
      if (!m) throw new PatternError("a '{' that is not a quantifier {m}, {m,} or {m,n}");
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (min > max) throw new PatternError(`quantifier {${m[1]},${m[3]}} with min > max`);
      if (min > MAX_PATTERN_REPEAT || (max !== Infinity && max > MAX_PATTERN_REPEAT)) {
        throw new PatternError(`a quantifier above ${MAX_PATTERN_REPEAT}`);
      }
      this.i += m[0].length - 1;
    } else return atom;
    this.i++;
    if (this.peek() === 0x3f) this.i++; // lazy: same language
    const next = this.peek();
    if (next === 0x2a || next === 0x2b || next === 0x3f || next === 0x7b) throw new PatternError('a quantifier after a quantifier');
    return { k: 'repeat', node: atom, min, max };
  }

  private atom(): Node {
    const c = this.cps[this.i++]!;
    switch (c) {
      case 0x28 /* ( */: {
        if (this.peek() === 0x3f /* ? */) {
          const kind = this.peek(1);
          if (kind === 0x3a /* : */) this.i += 2;
          else if (kind === 0x3c /* < */ && this.peek(2) !== 0x3d && this.peek(2) !== 0x21) {
            const close = this.cps.indexOf(0x3e, this.i);
            if (close < 0) throw new PatternError('an unterminated group name');
            this.i = close + 1;
          } else throw new PatternError('lookaround (?= (?! (?<= (?<!)');
        }
        const inner = this.alternation();
        if (this.cps[this.i++] !== 0x29) throw new PatternError("a '(' without ')'");
        // Wrapped so `^(a|b)$` is not mistaken for a top-level alternation.
        return { k: 'seq', items: [inner] };
      }
      case 0x5b /* [ */:
        return { k: 'chars', set: this.charClass() };
      case 0x2e /* . */:
        return { k: 'chars', set: DOT };
      case 0x5c /* \ */: {
        const esc = this.escape(false);
        return { k: 'chars', set: esc };
      }
      case 0x5e /* ^ */:
        throw new PatternError("'^' other than at the start");
      case 0x24 /* $ */:
        throw new PatternError("'$' other than at the end");
      case 0x29:
        throw new PatternError("a ')' without '('");
      case 0x2a:
      case 0x2b:
      case 0x3f:
      case 0x7b:
        throw new PatternError('a quantifier with nothing to repeat');
      case 0x7d:
      case 0x5d:
        throw new PatternError(`an unescaped '${String.fromCodePoint(c)}'`);
      default:
        return { k: 'chars', set: single(c) };
    }
  }

  private charClass(): CharSet {
    let negate = false;
    if (this.peek() === 0x5e) {
      negate = true;
      this.i++;
    }
    const parts: CharSet[] = [];
    let first = true;
    for (;;) {
      const c = this.cps[this.i++];
      if (c === undefined) throw new PatternError("a '[' without ']'");
      if (c === 0x5d && !first) break;
      if (c === 0x5d && first) throw new PatternError('an empty class []');
      first = false;
      let lo: CharSet = c === 0x5c ? this.escape(true) : single(c);
      if (this.peek() === 0x2d /* - */ && this.peek(1) !== 0x5d && this.peek(1) !== undefined) {
        this.i++;
        const d = this.cps[this.i++]!;
        const hi = d === 0x5c ? this.escape(true) : single(d);
        if (lo.length !== 1 || lo[0]![0] !== lo[0]![1] || hi.length !== 1 || hi[0]![0] !== hi[0]![1]) {
          throw new PatternError('a class range with a class escape (\\d, \\w, \\s) at an end');
        }
        const a = lo[0]![0];
        const b = hi[0]![0];
        if (a > b) throw new PatternError('a class range out of order');
        lo = [[a, b]];
      }
      parts.push(lo);
    }
    const set = union(...parts);
    return negate ? complement(set) : set;
  }

  private escape(inClass: boolean): CharSet {
    const c = this.cps[this.i++];
    if (c === undefined) throw new PatternError('a trailing backslash');
    const ch = String.fromCodePoint(c);
    switch (ch) {
      case 'd':
        return DIGITS;
      case 'D':
        return complement(DIGITS);
      case 'w':
        return WORD;
      case 'W':
        return complement(WORD);
      case 's':
        return SPACE;
      case 'S':
        return complement(SPACE);
      case 't':
        return single(9);
      case 'n':
        return single(10);
      case 'r':
        return single(13);
      case 'f':
        return single(12);
      case 'v':
        return single(11);
      case '0':
        if (this.peek() !== undefined && this.peek()! >= 0x30 && this.peek()! <= 0x39) throw new PatternError('a backreference (\\0N)');
        return single(0);
      case 'x':
        return single(this.hex(2));
      case 'u': {
        if (this.peek() === 0x7b) {
          const close = this.cps.indexOf(0x7d, this.i);
          if (close < 0) throw new PatternError('an unterminated \\u{...}');
          const hex = String.fromCodePoint(...this.cps.slice(this.i + 1, close));
          if (!/^[0-9a-fA-F]{1,6}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) throw new PatternError(`\\u{${hex}}`);
          this.i = close + 1;
          return single(parseInt(hex, 16));
        }
        return single(this.hex(4));
      }
      case 'b':
        if (inClass) return single(8);
        throw new PatternError('the word boundary \\b');
      case 'B':
        throw new PatternError('the word boundary \\B');
      case 'p':
      case 'P':
        throw new PatternError(`the Unicode property escape \\${ch}{...}`);
      case 'c':
        throw new PatternError('the control escape \\cX');
      case 'k':
        throw new PatternError('the named backreference \\k<...>');
      default:
        if (/[1-9]/.test(ch)) throw new PatternError(`the backreference \\${ch}`);
        if ('^$\\.*+?()[]{}|/-'.includes(ch)) return single(c);
        throw new PatternError(`the escape \\${ch}`);
    }
  }

  private hex(n: number): number {
    const hex = String.fromCodePoint(...this.cps.slice(this.i, this.i + n));
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) throw new PatternError(`a bad hex escape '${hex}'`);
    this.i += n;
    return parseInt(hex, 16);
  }
}

/**
 * GBNF for the content (between the quotes) of a JSON string matching `pattern`. Throws
 * PatternError for what the subset does not cover or a pattern that allows nothing.
 */
export function patternToGbnf(pattern: string, b: GbnfBuilder): string {
  try {
    new RegExp(pattern, 'u');
  } catch (err) {
    throw new PatternError(`not a valid regular expression (${(err as Error).message})`);
  }
  const { node, start, end } = new Parser(pattern).parse();
  const body = emit(node, b);
  if (body === null) throw new PatternError('it allows no string that a JSON string can hold as generated text');
  const any = jsonStringCharGbnf(STRING_UNIVERSE)!;
  const anyRule = b.rule('pattern-any-char', any);
  return [start ? '' : `${anyRule}*`, body, end ? '' : `${anyRule}*`].filter((s) => s !== '').join(' ') || '""';
}

function emit(node: Node, b: GbnfBuilder): string | null {
  switch (node.k) {
    case 'chars': {
      const g = jsonStringCharGbnf(normalize(node.set));
      return g;
    }
    case 'seq': {
      const parts: string[] = [];
      for (const item of node.items) {
        const g = emit(item, b);
        if (g === null) return null;
        parts.push(g);
      }
      return parts.length === 0 ? '""' : parts.length === 1 ? parts[0]! : `(${parts.join(' ')})`;
    }
    case 'alt': {
      const options = node.options.map((o) => emit(o, b)).filter((g): g is string => g !== null);
      if (options.length === 0) return null;
      return options.length === 1 ? options[0]! : `(${options.join(' | ')})`;
    }
    case 'repeat': {
      const inner = emit(node.node, b);
      if (inner === null) return node.min === 0 ? '""' : null;
      // A named rule keeps llama.cpp's repetition expansion at one rule per copy.
      const ref = /^[a-z0-9-]+$/.test(inner) ? inner : b.rule('pattern-item', inner);
      if (node.min === 0 && node.max === Infinity) return `${ref}*`;
      if (node.min === 1 && node.max === Infinity) return `${ref}+`;
      if (node.min === 0 && node.max === 1) return `${ref}?`;
      if (node.max === Infinity) return `${ref}{${node.min},}`;
      if (node.min === node.max) return `${ref}{${node.min}}`;
      return `${ref}{${node.min},${node.max}}`;
    }
  }
}
