/**
 * Tokens to keep away from a grammar-constrained generation, where llama.cpp's grammar and the
 * text the client receives disagree (both seen on the random tiny model: 2 of 600 outputs with
 * free strings failed their schema before this guard):
 *
 * 1. Control, unknown and unused tokens (`<s>`, `<unk>`, `<|im_start|>`, ...) other than
 *    end-of-generation. The grammar matches their text (`<unk>` counts as five characters of a
 *    string), but detokenizing without special tokens renders them as nothing. Banned always.
 *
 * 2. Overlong UTF-8. llama.cpp's grammar decodes bytes without rejecting overlong forms, so
 *    `E0 9F BF` passes as U+07FF and `F0 8F BF BF` as U+FFFF, while the text decoder turns each
 *    byte into U+FFFD (three or four characters). After a token whose bytes end with a lone `E0`
 *    the next token must not start with a byte 80-9F; after `F0`, not with 80-8F (RFC 3629).
 *    Surrogates (`ED A0`..) and code points above U+10FFFF (`F4 90`..) need no ban: the compiled
 *    grammars' positive classes already refuse them.
 *
 * Token bytes are llama.cpp's pieces (token-pieces.ts); tokenizers other than SentencePiece and
 * GPT-2 BPE get the first rule only.
 */

import { TOKEN_TYPE, tokenPieces, type VocabInfo } from './token-pieces.js';

export type { VocabInfo } from './token-pieces.js';

export interface GrammarTokenGuard {
  /** Never allowed while a grammar constrains sampling. */
  readonly banned: Uint32Array;
  /** Extra tokens to ban for the next step after `token`; undefined when none. */
  after(token: number): Uint32Array | undefined;
}

/** Whether the bytes end with `lead` (E0 and F0 are never continuation bytes, so a final one starts a sequence). */
function endsWithLead(bytes: Uint8Array, lead: number): boolean {
  return bytes.length > 0 && bytes[bytes.length - 1] === lead;
}

export function buildGrammarTokenGuard(vocab: VocabInfo): GrammarTokenGuard {
  const banned: number[] = [];
  for (let t = 0; t < vocab.tokens.length; t++) {
    const type = vocab.types?.[t];
    if ((type === TOKEN_TYPE.control || type === TOKEN_TYPE.unknown || type === TOKEN_TYPE.unused) && !vocab.isEog(t)) banned.push(t);
  }
  const pieces = tokenPieces(vocab);
  const afterE0: number[] = [];
  const afterF0: number[] = [];
  const leadE0 = new Set<number>();
  const leadF0 = new Set<number>();
  for (let t = 0; t < vocab.tokens.length; t++) {
    const bytes = pieces[t];
    if (!bytes || bytes.length === 0) continue;
    const first = bytes[0]!;
    if (first >= 0x80 && first <= 0x9f) afterE0.push(t);
    if (first >= 0x80 && first <= 0x8f) afterF0.push(t);
    if (endsWithLead(bytes, 0xe0)) leadE0.add(t);
    if (endsWithLead(bytes, 0xf0)) leadF0.add(t);
  }
  const banE0 = Uint32Array.from(afterE0);
  const banF0 = Uint32Array.from(afterF0);
  return {
    banned: Uint32Array.from(banned),
    after: (token) => (leadE0.has(token) ? banE0 : leadF0.has(token) ? banF0 : undefined),
  };
}
