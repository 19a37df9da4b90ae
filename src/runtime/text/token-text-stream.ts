/**
 * Turns generated token ids into text deltas. A token can end in the middle of a UTF-8
 * character (byte-fallback tokens), and detokenizing it alone yields U+FFFD; such tokens are held
 * until the character completes (or a small limit passes, for genuinely invalid bytes).
 * SentencePiece vocabularies also need the previous tokens to place leading spaces correctly,
 * so a short tail of released tokens is passed as context.
 */
/** Both lists are only valid during the call: the stream changes them in place afterwards. */
export type Detokenize = (tokens: readonly number[], lastTokens: readonly number[]) => string;

/** Tokens held at most before invalid bytes are released as U+FFFD (a UTF-8 char is <= 4 bytes). */
const MAX_HELD_TOKENS = 4;
/** Released tokens kept as detokenizer context. */
const CONTEXT_TOKENS = 4;

export class TokenTextStream {
  /** Both lists are kept and changed in place (no arrays per token): `detokenize` must not keep them. */
  private readonly held: number[];
  private readonly released: number[];

  /** `held`/`context` restore a `snapshot()` (a suspended request resuming). */
  constructor(
    private readonly detokenize: Detokenize,
    held: readonly number[] = [],
    context: readonly number[] = [],
  ) {
    this.held = [...held];
    this.released = [...context];
  }

  snapshot(): { held: number[]; context: number[] } {
    return { held: [...this.held], context: [...this.released] };
  }

  /** Add one token; returns the text it completes ('' while it is held). */
  push(token: number): string {
    this.held.push(token);
    const text = this.detokenize(this.held, this.released);
    if (text.endsWith('\uFFFD') && this.held.length < MAX_HELD_TOKENS) return '';
    return this.release(text);
  }

  /** Release whatever is held (generation ended). */
  flush(): string {
    if (this.held.length === 0) return '';
    return this.release(this.detokenize(this.held, this.released));
  }

  private release(text: string): string {
    for (const t of this.held) this.released.push(t);
    if (this.released.length > CONTEXT_TOKENS) this.released.splice(0, this.released.length - CONTEXT_TOKENS);
    this.held.length = 0;
    return text;
  }
}
