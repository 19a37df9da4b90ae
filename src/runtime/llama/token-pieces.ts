/**
 * Each token's bytes as llama.cpp's grammar sees them (`llama_vocab::token_to_piece(id)`, the
 * cached piece with special tokens rendered), from the GGUF vocabulary:
 *   - SentencePiece ("llama"): byte-fallback tokens `<0xNN>` are that byte; normal tokens are
 *     their text with U+2581 "▁" as a space; user-defined tokens are their text as it is.
 *   - GPT-2 byte-level BPE ("gpt2"): normal tokens map back through the bytes-to-unicode table;
 *     user-defined tokens are their text.
 * Control, unknown and unused tokens get null: the grammar token guard bans them while a grammar
 * constrains sampling. Other tokenizer models get null for every token (nothing is mirrored).
 */

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface VocabInfo {
  tokens: readonly string[];
  types?: readonly number[];
  /** `tokenizer.ggml.model`: "llama" (SentencePiece), "gpt2" (byte-level BPE), ... */
  model?: string;
  isEog(token: number): boolean;
}

/** GPT-2's bytes_to_unicode, inverted: the piece character back to its byte. */
function gpt2ByteDecoder(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const cp = printable.includes(b) ? b : 256 + n++;
    map.set(String.fromCodePoint(cp), b);
  }
  return map;
}

const utf8 = new TextEncoder();

export function tokenPieces(vocab: VocabInfo): (Uint8Array | null)[] {
  const out: (Uint8Array | null)[] = new Array(vocab.tokens.length).fill(null);
  const decoder = vocab.model === 'gpt2' ? gpt2ByteDecoder() : null;
  if (vocab.model !== 'llama' && !decoder) return out;
  for (let t = 0; t < vocab.tokens.length; t++) {
    const text = vocab.tokens[t] ?? '';
    const type = vocab.types?.[t] ?? TOKEN_TYPE.normal;
    if (type === TOKEN_TYPE.userDefined) out[t] = utf8.encode(text);
    else if (type === TOKEN_TYPE.byte) {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
      out[t] = m ? Uint8Array.of(parseInt(m[1]!, 16)) : null;
    } else if (type !== TOKEN_TYPE.normal) out[t] = null;
    else if (decoder) {
      const bytes: number[] = [];
      let ok = true;
      for (const ch of text) {
        const b = decoder.get(ch);
        if (b === undefined) {
          ok = false; // an added token written as plain text
          break;
        }
        bytes.push(b);
      }
      out[t] = ok ? Uint8Array.from(bytes) : utf8.encode(text);
    } else out[t] = utf8.encode(text.replaceAll('\u2581', ' '));
  }
  return out;
}
