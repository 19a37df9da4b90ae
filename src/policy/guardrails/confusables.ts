/**
 * Cyrillic and Greek letters that look like Latin ones, folded to those Latin letters so a blocklist
 * term cannot be dodged by writing `сlassified` with a Cyrillic `с`.
 *
 * The table is Unicode's confusables data (UTS #39 `confusables.txt`, version 13.0, as shipped in the
 * npm package `unhomoglyph` 1.0.6), narrowed to: one Cyrillic or Greek letter whose prototype is one
 * or two ASCII letters, keyed by its small letter. A capital's look is used when its small letter has
 * none of its own (`Н` looks like `H`, so `н` folds to `h`), so that folding never depends on case:
 * `НЕТ` and `нет` fold alike. The full confusables mapping is not used: it also folds Latin to Latin
 * (`m` to `rn`, `1` to `l`), which would make the term `com` match `corn`.
 */
const TABLE: readonly [number, string][] = [
  [0x037a, 'i'], // ͺ
  [0x03b1, 'a'], // α
  [0x03b2, 'b'], // β
  [0x03b3, 'y'], // γ
  [0x03b5, 'e'], // ε
  [0x03b6, 'z'], // ζ
  [0x03b7, 'h'], // η
  [0x03b9, 'i'], // ι
  [0x03ba, 'k'], // κ
  [0x03bc, 'm'], // μ
  [0x03bd, 'v'], // ν
  [0x03bf, 'o'], // ο
  [0x03c1, 'p'], // ρ
  [0x03c3, 'o'], // σ
  [0x03c4, 't'], // τ
  [0x03c5, 'u'], // υ
  [0x03c7, 'x'], // χ
  [0x03d2, 'y'], // ϒ
  [0x03dd, 'f'], // ϝ
  [0x03f1, 'p'], // ϱ
  [0x03f2, 'c'], // ϲ
  [0x03f3, 'j'], // ϳ
  [0x03fb, 'm'], // ϻ
  [0x0430, 'a'], // а
  [0x0432, 'b'], // в
  [0x0433, 'r'], // г
  [0x0435, 'e'], // е
  [0x043a, 'k'], // к
  [0x043c, 'm'], // м
  [0x043d, 'h'], // н
  [0x043e, 'o'], // о
  [0x0440, 'p'], // р
  [0x0441, 'c'], // с
  [0x0442, 't'], // т
  [0x0443, 'y'], // у
  [0x0445, 'x'], // х
  [0x044b, 'bl'], // ы
  [0x044c, 'b'], // ь
  [0x044e, 'lo'], // ю
  [0x0455, 's'], // ѕ
  [0x0456, 'i'], // і
  [0x0458, 'j'], // ј
  [0x0461, 'w'], // ѡ
  [0x0475, 'v'], // ѵ
  [0x04af, 'y'], // ү
  [0x04bb, 'h'], // һ
  [0x04bd, 'e'], // ҽ
  [0x04cf, 'i'], // ӏ
  [0x04d5, 'ae'], // ӕ
  [0x0501, 'd'], // ԁ
  [0x050d, 'g'], // ԍ
  [0x051b, 'q'], // ԛ
  [0x051d, 'w'], // ԝ
  [0x1d26, 'r'], // ᴦ
  [0x1fbe, 'i'], // ι
  [0xa647, 'i'], // ꙇ
  [0xa699, 'oo'], // ꚙ
];

const MAP = new Map<string, string>(TABLE.map(([cp, latin]) => [String.fromCodePoint(cp), latin]));
const ANY = new RegExp(`[${[...MAP.keys()].join('')}]`, 'gu');

/** Replaces look-alike small Cyrillic/Greek letters in lower-cased text with their Latin letters. */
export function foldConfusables(lower: string): string {
  return lower.replace(ANY, (c) => MAP.get(c)!);
}
