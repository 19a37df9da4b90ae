/**
 * The blocklist, compiled once per policy version into one regex over normalised text.
 *
 * Normalisation (terms and text alike) undoes the ways a term can be written to look the same and
 * compare different: compatibility forms (fullwidth, ligatures), invisible characters (zero-width
 * spaces and joiners, soft hyphens, BOM, bidi controls), combining marks on Latin, Greek and
 * Cyrillic letters (`c̈lässified`), look-alike Cyrillic and Greek letters (confusables.ts), case and
 * whitespace runs. Other scripts keep their marks: in Devanagari or Arabic a mark changes the word.
 * A term matches as a whole
 * word when its edge is a letter or digit (`secret` does not match `secretary`); a leading or
 * trailing `*` lifts that edge (`classif*` matches `classified`, `*coin` matches `bitcoin`). Terms
 * whose edge is punctuation match wherever they occur.
 */

import { foldConfusables } from './confusables.js';

const WORD = String.raw`[\p{L}\p{N}\p{M}_]`;
const WORD_CHAR = /^[\p{L}\p{N}\p{M}_]$/u;

/** Characters Unicode says to ignore when rendering: U+00AD, U+200B..U+200F, U+2060..U+206F, U+FEFF, ... */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/gu;
/** A run of combining marks and the character before it (none at the start of the text). */
const MARKS = /(^|[^\p{M}])(\p{M}+)/gu;
const LETTER = /^\p{L}$/u;
const LATIN_GREEK_CYRILLIC = /^[\p{sc=Latin}\p{sc=Greek}\p{sc=Cyrillic}]$/u;
const marksMatter = (base: string): boolean => LETTER.test(base) && !LATIN_GREEK_CYRILLIC.test(base);

export function normalise(text: string): string {
  const folded = text
    .normalize('NFKD')
    .replace(INVISIBLE, '')
    .toLowerCase()
    // Marks stay only on letters of scripts where they make the word; elsewhere (and alone) they are dropped.
    .replace(MARKS, (all, base: string) => (marksMatter(base) ? all : base));
  return foldConfusables(folded).normalize('NFC').replace(/\s+/gu, ' ');
}

/**
 * Start of the shortest suffix of `text` holding at least `chars` characters that survive
 * normalisation (not invisible, not a mark): raw lengths say nothing once a term is padded with
 * zero-width characters, so windows over raw text are sized with this.
 */
export function visibleSuffixStart(text: string, chars: number): number {
  let seen = 0;
  let i = text.length;
  while (i > 0 && seen < chars) {
    const c = text.codePointAt(i - 1)!;
    // Step over a surrogate pair as one character.
    const width = i >= 2 && c >= 0xdc00 && c <= 0xdfff ? 2 : 1;
    i -= width;
    if (!SKIPPED.test(text.slice(i, i + width))) seen++;
  }
  return i;
}
const SKIPPED = /^[\p{Default_Ignorable_Code_Point}\p{M}]$/u;

function escapeRegExp(s: string): string {
  // `u` regexes reject needless escapes (`\-`), so only syntax characters are escaped.
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export interface BlocklistHit {
  /** The configured term (for logs; never sent to the client). */
  term: string;
}

export type BlocklistScan =
  | { kind: 'clean' }
  | { kind: 'hit'; hit: BlocklistHit }
  /** A whole-word term sits at the very end and the next character decides; hold the tail. */
  | { kind: 'pending' };

export class Blocklist {
  /** Longest normalised term, in characters: what a stream must hold back. */
  readonly maxTermLength: number;
  readonly size: number;
  private readonly re: RegExp | null;
  /** Normalised term bodies and whether they must start a word, for `holdBack`. */
  private readonly bodies: { body: string; boundedStart: boolean }[] = [];
  /** Group index -> configured term, and whether the term needs a word boundary after it. */
  private readonly groups: { term: string; boundedEnd: boolean }[] = [];

  constructor(terms: readonly string[]) {
    const cleaned = [...new Set(terms.map((t) => t.trim()).filter((t) => t.replace(/\*/g, '') !== ''))];
    // Longest first, so that of two terms starting at the same place the longer one is reported.
    const parts = cleaned
      .map((term) => {
        const open = term.startsWith('*');
        const wild = term.endsWith('*') && term.length > 1;
        const body = normalise(term.slice(open ? 1 : 0, wild ? -1 : undefined).trim());
        return { term, open, wild, body };
      })
      .filter((p) => p.body !== '')
      .sort((a, b) => b.body.length - a.body.length);
    let max = 0;
    const alternatives: string[] = [];
    for (const p of parts) {
      const chars = [...p.body];
      const firstWord = WORD_CHAR.test(chars[0]!);
      const lastWord = WORD_CHAR.test(chars[chars.length - 1]!);
      const before = !p.open && firstWord ? `(?<!${WORD})` : '';
      const boundedEnd = !p.wild && lastWord;
      const after = boundedEnd ? `(?!${WORD})` : '';
      alternatives.push(`${before}(${escapeRegExp(p.body)})${after}`);
      this.groups.push({ term: p.term, boundedEnd });
      this.bodies.push({ body: p.body, boundedStart: before !== '' });
      max = Math.max(max, p.body.length);
    }
    this.maxTermLength = max;
    this.size = alternatives.length;
    this.re = alternatives.length ? new RegExp(alternatives.join('|'), 'gu') : null;
  }

  /**
   * How many trailing characters of a stream must be held back because they could still grow
   * into a term: the longest suffix whose normalised form is a prefix of some term (a complete
   * whole-word term counts too: the next character decides). A whole-word term can only start
   * after a non-word character, so the `c` ending `abc` is not held for `classified`. Usually 0
   * or a few characters, instead of always the longest term's length, so streams are not delayed
   * for nothing.
   */
  holdBack(text: string): number {
    if (this.bodies.length === 0 || text === '') return 0;
    const maxRaw = text.length - visibleSuffixStart(text, this.maxTermLength * 2 + 8);
    for (let r = maxRaw; r > 0; r--) {
      const start = text.length - r;
      const tail = normalise(text.slice(start));
      if (tail === '' || tail === ' ') continue;
      if (this.bodies.some((b) => b.body.startsWith(tail) && !(b.boundedStart && this.afterWord(text, start)))) return r;
    }
    return 0;
  }

  /** Whether the normalised text before `start` ends in a word character (so no word starts there). */
  private afterWord(text: string, start: number): boolean {
    const before = normalise(text.slice(visibleSuffixStart(text.slice(0, start), 2), start));
    return before !== '' && WORD_CHAR.test([...before].pop()!);
  }

  /**
   * Scan text. With `final` false (a stream that may continue), a whole-word term ending exactly
   * at the end is `pending` rather than a hit, since the next character may extend the word.
   */
  scan(text: string, final = true): BlocklistScan {
    if (!this.re) return { kind: 'clean' };
    const norm = normalise(text);
    let pending = false;
    this.re.lastIndex = 0;
    for (let m = this.re.exec(norm); m !== null; m = this.re.exec(norm)) {
      const g = m.findIndex((v, i) => i > 0 && v !== undefined) - 1;
      const group = this.groups[g]!;
      if (!final && group.boundedEnd && m.index + m[0].length === norm.length) {
        pending = true;
        continue;
      }
      return { kind: 'hit', hit: { term: group.term } };
    }
    return pending ? { kind: 'pending' } : { kind: 'clean' };
  }
}
