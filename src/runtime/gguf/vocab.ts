/**
 * A deterministic SentencePiece-style vocabulary for llama.cpp's "llama" (SPM) tokenizer.
 *
 * How llama.cpp tokenizes with it (llm_tokenizer_spm): spaces become U+2581 "▁" (plus one leading
 * "▁"), the text is split into UTF-8 characters, and adjacent symbols are merged, highest score
 * first, whenever their concatenation is itself a token. So a piece is only reachable if some split
 * of it into two shorter tokens is also in the vocab; we add pieces level by level (each level
 * extends the previous one by a character) so every prefix path exists. Characters that are not
 * tokens fall back to the 256 `<0xNN>` byte tokens, so any UTF-8 text round-trips exactly.
 */
import { TokenType } from './format.js';

export const SPACE = '\u2581';

export interface Vocab {
  readonly tokens: string[];
  readonly scores: Float32Array;
  readonly types: Int32Array;
  readonly unk: number;
  readonly bos: number;
  readonly eos: number;
  readonly imStart: number;
  readonly imEnd: number;
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
/** Common Latin-1/Latin Extended letters and typography, so accented text mostly avoids byte fallback. */
const EXTRA_CHARS =
  'àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝŒ€£¥°·–—‘’“”…«»¿¡';

const SPECIALS: ReadonlyArray<readonly [string, number]> = [
  ['<unk>', TokenType.UNKNOWN],
  ['<s>', TokenType.CONTROL],
  ['</s>', TokenType.CONTROL],
  ['<|im_start|>', TokenType.CONTROL],
  ['<|im_end|>', TokenType.CONTROL],
];

function* singleChars(): Generator<string> {
  for (let c = 0x21; c <= 0x7e; c++) yield String.fromCharCode(c);
  yield* EXTRA_CHARS;
}

/** Merge levels in order; each piece is a previous-level piece plus one character. */
function* mergedPieces(): Generator<string> {
  for (const a of LOWER + UPPER) yield SPACE + a;
  for (const a of LOWER) for (const b of LOWER) yield a + b;
  for (const a of LOWER) for (const b of LOWER) yield SPACE + a + b;
  for (const a of UPPER) for (const b of LOWER) yield SPACE + a + b;
  for (const a of LOWER) for (const b of LOWER) for (const c of LOWER) yield a + b + c;
  for (const a of LOWER) for (const b of LOWER) for (const c of LOWER) yield SPACE + a + b + c;
}

/** The smallest vocabulary: specials, bytes, "▁" and the single characters. */
export const MIN_VOCAB = SPECIALS.length + 256 + 1 + [...singleChars()].length;

/**
 * Builds exactly `size` tokens: ids 0..4 are `<unk> <s> </s> <|im_start|> <|im_end|>`, then bytes
 * `<0x00>`..`<0xFF>`, then normal pieces. Normal scores grow with piece length (so merging prefers
 * longer pieces) and fall slightly with id (a stable tie-break).
 */
export function buildVocab(size: number): Vocab {
  if (!Number.isInteger(size) || size < MIN_VOCAB) throw new Error(`vocab size must be an integer >= ${MIN_VOCAB}, got ${size}`);
  const tokens: string[] = [];
  const types: number[] = [];
  const scores: number[] = [];
  for (const [text, type] of SPECIALS) {
    tokens.push(text);
    types.push(type);
    scores.push(0);
  }
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
    scores.push(0);
  }
  const normal = (function* () {
    yield SPACE;
    yield* singleChars();
    yield* mergedPieces();
  })();
  for (const piece of normal) {
    if (tokens.length >= size) break;
    tokens.push(piece);
    types.push(TokenType.NORMAL);
    scores.push([...piece].length - tokens.length * 1e-5);
  }
  if (tokens.length < size) throw new Error(`vocab generator has only ${tokens.length} pieces, asked for ${size}`);
  return {
    tokens,
    scores: Float32Array.from(scores),
    types: Int32Array.from(types),
    unk: 0,
    bos: 1,
    eos: 4,
    imStart: 3,
    imEnd: 4,
  };
}
