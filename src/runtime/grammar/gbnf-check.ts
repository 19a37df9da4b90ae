/**
 * Checks raw GBNF text in TypeScript before llama.cpp sees it. llama.cpp turns most grammar
 * errors into an exception, but not all (measured in a child process with node-llama-cpp 3.22.1,
 * test/unit/grammar-native.test.ts):
 *   - deeply nested parentheses overflow its recursive-descent parser's stack: the process dies
 *     with SIGSEGV;
 *   - `x{0,N}` with N > 2000 is silently read as `x*`, so a bound would not hold;
 *   - `<token>` / `<[id]>` elements depend on the model's vocabulary.
 * So this parser mirrors llama.cpp's syntax (src/llama-grammar.cpp, parse_*) and refuses: token
 * elements, nesting beyond `maxNesting`, repetition counts above MAX_GBNF_REPEAT, code point 0 in a
 * literal, code points above U+10FFFF, empty classes, undefined rules, a missing `root`, more than `maxRules` rules
 * (counting the ones llama.cpp synthesizes for groups and repetitions) and text above `maxBytes`.
 */
import { InferFluxError } from '../../errors.js';

export const MAX_GBNF_REPEAT = 1000;

export interface GbnfLimits {
  maxBytes: number;
  /** Nesting of parentheses. */
  maxNesting: number;
  /** Rules after llama.cpp expands groups and repetitions. */
  maxRules: number;
}

export const GBNF_LIMITS: GbnfLimits = { maxBytes: 512 * 1024, maxNesting: 64, maxRules: 20_000 };

export interface GbnfSummary {
  /** Rules defined in the text. */
  rules: number;
  /** Estimated rules after llama.cpp's expansion. */
  expandedRules: number;
}

/**
 * One grammar element after expansion: a character test (a literal character is a one-range
 * class; `.` is an empty negated class) or a reference to a rule. Groups and repetitions become
 * synthetic rules the way llama.cpp expands them (`x*` -> `R ::= x R | ""`, `x{m,n}` -> m copies
 * then nested optionals), so the language is the same.
 */
export type GbnfElement = { kind: 'chars'; ranges: number[]; negated: boolean } | { kind: 'ref'; rule: number };

/** A parsed grammar: rules[i] is a list of alternatives, each a sequence of elements. */
export interface GbnfRules {
  rules: GbnfElement[][][];
  root: number;
}

class GbnfSyntaxError extends Error {}

export function checkGbnf(text: string, param: string, limits: Partial<GbnfLimits> = {}): GbnfSummary {
  return parse(text, param, limits).summary;
}

/** `checkGbnf`, also returning the rules (for grammar-mirror.ts). Same checks, same errors. */
export function parseGbnf(text: string, param: string, limits: Partial<GbnfLimits> = {}): GbnfRules {
  return parse(text, param, limits).rules;
}

function parse(text: string, param: string, limits: Partial<GbnfLimits>): { summary: GbnfSummary; rules: GbnfRules } {
  const lim = { ...GBNF_LIMITS, ...limits };
  const fail = (message: string): never => {
    throw new InferFluxError('invalid_request', `The grammar is invalid: ${message}`, { param });
  };
  if (typeof text !== 'string' || text.trim() === '') fail('it is empty.');
  if (Buffer.byteLength(text) > lim.maxBytes) fail(`it is larger than ${lim.maxBytes} bytes.`);
  try {
    const parser = new Parser(text, lim);
    const summary = parser.parse();
    return { summary, rules: parser.result() };
  } catch (err) {
    if (err instanceof GbnfSyntaxError) fail(err.message);
    throw err;
  }
}

class Parser {
  private pos = 0;
  private readonly defined = new Set<string>();
  private readonly referenced = new Map<string, number>();
  private expanded = 0;
  /** Rule bodies by index; names map to indexes in order of first appearance. */
  private readonly bodies: GbnfElement[][][] = [];
  private readonly index = new Map<string, number>();

  constructor(
    private readonly src: string,
    private readonly lim: GbnfLimits,
  ) {}

  parse(): GbnfSummary {
    this.space(true);
    while (this.pos < this.src.length) this.rule();
    if (!this.defined.has('root')) this.error("there is no 'root' rule");
    for (const [name, at] of this.referenced) {
      if (!this.defined.has(name)) this.error(`rule '${name}' is used but not defined`, at);
    }
    return { rules: this.defined.size, expandedRules: this.expanded };
  }

  result(): GbnfRules {
    return { rules: this.bodies, root: this.index.get('root')! };
  }

  private ruleIndex(name: string): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.bodies.push([]) - 1;
      this.index.set(name, i);
    }
    return i;
  }

  /** A new unnamed rule (a group or a repetition). */
  private synthetic(alternatives: GbnfElement[][]): GbnfElement {
    return { kind: 'ref', rule: this.bodies.push(alternatives) - 1 };
  }

  private error(message: string, at = this.pos): never {
    const line = this.src.slice(0, at).split('\n').length;
    throw new GbnfSyntaxError(`${message} (line ${line}).`);
  }

  private countRules(n: number): void {
    this.expanded += n;
    if (this.expanded > this.lim.maxRules) this.error(`it expands to more than ${this.lim.maxRules} rules`);
  }

  private space(newlines: boolean): void {
    for (;;) {
      const c = this.src[this.pos];
      if (c === ' ' || c === '\t' || (newlines && (c === '\r' || c === '\n'))) this.pos++;
      else if (c === '#') {
        while (this.pos < this.src.length && this.src[this.pos] !== '\n' && this.src[this.pos] !== '\r') this.pos++;
      } else return;
    }
  }

  private name(): string {
    const m = /^[a-zA-Z0-9-]+/.exec(this.src.slice(this.pos, this.pos + 256));
    if (!m) this.error('expected a rule name');
    if (m[0].length === 256) this.error('a rule name is longer than 255 characters');
    this.pos += m[0].length;
    return m[0];
  }

  private rule(): void {
    const name = this.name();
    this.space(false);
    if (!this.src.startsWith('::=', this.pos)) this.error(`expected '::=' after '${name}'`);
    this.pos += 3;
    this.space(true);
    if (this.defined.has(name)) this.error(`rule '${name}' is defined twice`);
    this.defined.add(name);
    this.countRules(1);
    this.bodies[this.ruleIndex(name)] = this.alternates(false, 0);
    const c = this.src[this.pos];
    if (c === '\r') this.pos += this.src[this.pos + 1] === '\n' ? 2 : 1;
    else if (c === '\n') this.pos++;
    else if (c !== undefined) this.error(`unexpected '${c}'`);
    this.space(true);
  }

  private alternates(nested: boolean, depth: number): GbnfElement[][] {
    const alternatives = [this.sequence(nested, depth)];
    while (this.src[this.pos] === '|') {
      this.pos++;
      this.space(true);
      alternatives.push(this.sequence(nested, depth));
    }
    return alternatives;
  }

  private sequence(nested: boolean, depth: number): GbnfElement[] {
    const seq: GbnfElement[] = [];
    // Where the last item starts in `seq`: a repetition applies to that whole item (a literal
    // string repeats as a whole, as in llama.cpp's parse_sequence).
    let lastStart = -1;
    const item = (): void => {
      lastStart = seq.length;
    };
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) return seq;
      if (c === '"') {
        this.pos++;
        item();
        while (this.src[this.pos] !== '"') {
          if (this.pos >= this.src.length) this.error('a string literal is not closed');
          const cp = this.char();
          seq.push({ kind: 'chars', ranges: [cp, cp], negated: false });
        }
        this.pos++;
      } else if (c === '[') {
        this.pos++;
        item();
        const negated = this.src[this.pos] === '^';
        if (negated) this.pos++;
        const ranges: number[] = [];
        while (this.src[this.pos] !== ']') {
          if (this.pos >= this.src.length) this.error('a character class is not closed');
          const lo = this.char(true);
          let hi = lo;
          if (this.src[this.pos] === '-' && this.src[this.pos + 1] !== ']') {
            this.pos++;
            if (this.pos >= this.src.length) this.error('a character class is not closed');
            hi = this.char(true);
            if (hi < lo) this.error('a character range is out of order');
          }
          ranges.push(lo, hi);
        }
        if (ranges.length === 0) this.error('a character class is empty');
        this.pos++;
        seq.push({ kind: 'chars', ranges, negated });
      } else if (c === '<' || c === '!') {
        this.error('token elements (<...>, !<...>) are not accepted');
      } else if (/[a-zA-Z0-9-]/.test(c)) {
        const at = this.pos;
        const name = this.name();
        if (!this.referenced.has(name)) this.referenced.set(name, at);
        item();
        seq.push({ kind: 'ref', rule: this.ruleIndex(name) });
      } else if (c === '(') {
        if (depth + 1 > this.lim.maxNesting) this.error(`parentheses nest deeper than ${this.lim.maxNesting}`);
        this.pos++;
        this.space(true);
        this.countRules(1);
        const group = this.alternates(true, depth + 1);
        if (this.src[this.pos] !== ')') this.error("expected ')'");
        this.pos++;
        item();
        seq.push(this.synthetic(group));
      } else if (c === '.') {
        this.pos++;
        item();
        seq.push({ kind: 'chars', ranges: [], negated: true });
      } else if (c === '*' || c === '+' || c === '?') {
        if (lastStart < 0) this.error(`'${c}' has nothing to repeat`);
        this.pos++;
        this.countRules(1);
        this.repeat(seq, lastStart, c === '+' ? 1 : 0, c === '?' ? 1 : Infinity);
      } else if (c === '{') {
        if (lastStart < 0) this.error("'{' has nothing to repeat");
        const m = /^\{\s*(\d+)\s*(?:(,)\s*(\d*)\s*)?\}/.exec(this.src.slice(this.pos, this.pos + 64));
        if (!m) this.error('a repetition must be {m}, {m,} or {m,n}');
        const min = Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (min > MAX_GBNF_REPEAT || (max !== Infinity && max > MAX_GBNF_REPEAT)) {
          this.error(`a repetition count is above ${MAX_GBNF_REPEAT}`);
        }
        if (max < min) this.error('a repetition has max < min');
        this.pos += m[0].length;
        this.countRules(Math.max(1, max === Infinity ? min + 1 : max));
        this.repeat(seq, lastStart, min, max);
      } else {
        return seq;
      }
      this.space(nested);
    }
  }

  /** Replace the item at `seq[from..]` by `min` copies of it and up to `max - min` optional ones. */
  private repeat(seq: GbnfElement[], from: number, min: number, max: number): void {
    const x = seq.splice(from);
    for (let i = 0; i < min; i++) seq.push(...x);
    if (max === Infinity) {
      // R ::= x R | ""
      const rule = this.bodies.push([]) - 1;
      this.bodies[rule] = [[...x, { kind: 'ref', rule }], []];
      seq.push({ kind: 'ref', rule });
    } else if (max > min) {
      // x (x (x)?)? ...: built from the innermost optional outwards.
      let tail: GbnfElement | null = null;
      for (let i = min; i < max; i++) tail = this.synthetic([tail ? [...x, tail] : [...x], []]);
      seq.push(tail!);
    }
  }

  /** One character of a literal or class; returns its code point. */
  private char(inClass = false): number {
    const c = this.src[this.pos];
    let cp: number;
    if (c === '\\') {
      const e = this.src[this.pos + 1];
      const hex = (n: number): number => {
        const h = this.src.slice(this.pos + 2, this.pos + 2 + n);
        if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) this.error(`expected ${n} hex digits after \\${e}`);
        this.pos += 2 + n;
        return parseInt(h, 16);
      };
      if (e === 'x') cp = hex(2);
      else if (e === 'u') cp = hex(4);
      else if (e === 'U') cp = hex(8);
      else if (e !== undefined && 'trn\\"[]-'.includes(e)) {
        cp = { t: 9, r: 13, n: 10 }[e as 't' | 'r' | 'n'] ?? e.codePointAt(0)!;
        this.pos += 2;
      } else this.error(`unknown escape '\\${e ?? ''}'`);
    } else {
      cp = this.src.codePointAt(this.pos)!;
      this.pos += cp > 0xffff ? 2 : 1;
    }
    // In a class 0 is an ordinary bound (`[^\x00-\x1F]`); in a literal llama.cpp would read it
    // as its end-of-text sentinel.
    if (cp === 0 && !inClass) this.error('code point 0 in a string literal is not accepted');
    if (cp > 0x10ffff) this.error('a code point is above U+10FFFF');
    return cp;
  }
}
