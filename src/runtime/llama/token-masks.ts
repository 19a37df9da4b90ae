/**
 * Which tokens fit a constrained generation next, from the grammar mirror
 * (runtime/grammar/grammar-mirror.ts), so the batch adapter can steer llama.cpp's first pick onto
 * them (a positive logit bias) and spare llama.cpp its full-vocabulary grammar pass.
 *
 * A mask is computed once per mirror state and kept on it. Tokens are walked in code-point order,
 * so tokens sharing a prefix share its steps and a prefix that does not fit skips every token
 * below it. A state where more than `wideLimit` tokens fit (inside a free string, say) gets no
 * mask: there the model's own pick usually fits (the batch adapter checks it and draws again when
 * it does not), and a long bias list would cost more than it saves.
 *
 * Decoding follows llama.cpp's decode_utf8 (lead byte -> length, continuation bits taken as they
 * are), so overlong forms decode as llama.cpp decodes them. A token whose bytes end inside a
 * character is "partial": it is put in a mask whenever the state takes any non-ASCII character
 * (llama.cpp still checks it), and while a generation holds such an unfinished character no mask
 * is given.
 */
import { GrammarMirror, MirrorLimitError, type MirrorState } from '../grammar/grammar-mirror.js';

/** Bytes of a UTF-8 sequence by its lead byte's high nibble; 0 = not a lead (llama.cpp's table). */
const SEQUENCE_LENGTH = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4];

/**
 * Code points of complete characters in `bytes`, llama.cpp's way; `rest` = bytes of an
 * unfinished last character; null when a byte cannot start a character.
 */
function decode(bytes: ArrayLike<number>): { cps: number[]; rest: number[] } | null {
  const cps: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    const n = SEQUENCE_LENGTH[lead >> 4]!;
    if (n === 0) return null;
    if (i + n > bytes.length) return { cps, rest: Array.from({ length: bytes.length - i }, (_, k) => bytes[i + k]!) };
    // llama.cpp keeps one bit more of the lead than UTF-8 does; the same here, so both agree.
    let cp = lead & ((1 << (8 - n)) - 1);
    for (let k = 1; k < n; k++) cp = (cp << 6) + (bytes[i + k]! & 0x3f);
    cps.push(cp);
    i += n;
  }
  return { cps, rest: [] };
}

const NONE: readonly number[] = [];
/** Refused tokens remembered per grammar position. */
const MAX_REFUSED = 256;

/** Tokens tried before walking the vocabulary (see TokenMasker.mask). */
const PROBES = 64;

export class TokenMasker {
  /** Whole-character tokens in code-point order, with their code points and common prefix with the previous one. */
  private readonly order: Uint32Array;
  private readonly codes: Uint32Array[];
  private readonly shared: Uint16Array;
  private readonly partial: Uint32Array;

  constructor(
    private readonly pieces: readonly (Uint8Array | null)[],
    private readonly eog: readonly number[],
    readonly wideLimit = 2048,
  ) {
    const whole: { id: number; cps: Uint32Array }[] = [];
    const partial: number[] = [];
    for (let t = 0; t < pieces.length; t++) {
      const bytes = pieces[t];
      // llama.cpp rejects empty pieces and pieces starting with byte 0.
      if (!bytes || bytes.length === 0 || bytes[0] === 0 || eog.includes(t)) continue;
      const d = decode(bytes);
      if (!d) continue;
      if (d.rest.length > 0) partial.push(t);
      else whole.push({ id: t, cps: Uint32Array.from(d.cps) });
    }
    whole.sort((a, b) => {
      const n = Math.min(a.cps.length, b.cps.length);
      for (let i = 0; i < n; i++) if (a.cps[i] !== b.cps[i]) return a.cps[i]! - b.cps[i]!;
      return a.cps.length - b.cps.length;
    });
    this.order = Uint32Array.from(whole, (w) => w.id);
    this.codes = whole.map((w) => w.cps);
    this.shared = new Uint16Array(whole.length);
    for (let i = 1; i < whole.length; i++) {
      const a = this.codes[i - 1]!;
      const b = this.codes[i]!;
      let k = 0;
      while (k < a.length && k < b.length && a[k] === b[k]) k++;
      this.shared[i] = Math.min(k, 0xffff);
    }
    this.partial = Uint32Array.from(partial);
  }

  /** Tokens that fit after `state` (sorted ascending), or null when too many fit to be worth a mask. */
  mask(mirror: GrammarMirror, state: MirrorState): Uint32Array | null {
    if (state.mask !== undefined) return state.mask;
    // A quick look first: when a quarter of PROBES tokens spread over the vocabulary fit, far
    // more than wideLimit do (every state inside a free string), and the walk is not worth it.
    let probed = 0;
    const stride = Math.max(1, Math.floor(this.order.length / PROBES));
    for (let i = 0; i < this.order.length; i += stride) {
      let s: MirrorState | null = state;
      for (const cp of this.codes[i]!) if (!(s = mirror.step(s, cp))) break;
      if (s && ++probed > PROBES / 4) {
        state.mask = null;
        return null;
      }
    }
    const fits: number[] = [];
    const at: MirrorState[] = [state];
    let dead = Infinity;
    let result: Uint32Array | null = null;
    wide: {
      for (let i = 0; i < this.order.length; i++) {
        const l = this.shared[i]!;
        if (l >= dead) continue; // shares a prefix that does not fit
        dead = Infinity;
        const cps = this.codes[i]!;
        let s: MirrorState | null = at[l]!;
        for (let d = l; d < cps.length; d++) {
          s = mirror.step(s, cps[d]!);
          if (!s) {
            dead = d + 1;
            break;
          }
          at[d + 1] = s;
        }
        if (dead === Infinity) {
          fits.push(this.order[i]!);
          if (fits.length > this.wideLimit) break wide;
        }
      }
      if (mirror.acceptsAbove(state, 0x7f)) for (const t of this.partial) fits.push(t);
      if (state.completed) fits.push(...this.eog);
      if (fits.length > 0 && fits.length <= this.wideLimit) result = Uint32Array.from(fits).sort();
    }
    state.mask = result;
    return result;
  }

  /** Where one generation stands, mirrored token by token. */
  track(mirror: GrammarMirror): MirrorTracker {
    return new MirrorTracker(mirror, this, mirror.start, []);
  }

  /** @internal */
  bytesOf(token: number): Uint8Array | null {
    return this.pieces[token] ?? null;
  }

  /** @internal */
  isEog(token: number): boolean {
    return this.eog.includes(token);
  }
}

/**
 * One generation's mirror state. It follows the tokens llama.cpp accepted; when it cannot (a
 * token it cannot decode, a grammar too ambiguous to mirror, or a disagreement with llama.cpp)
 * it stops, and the generation simply gets no more masks.
 */
export class MirrorTracker {
  constructor(
    private readonly mirror: GrammarMirror,
    private readonly masker: TokenMasker,
    private state: MirrorState | null,
    private pending: number[],
  ) {}

  get lost(): boolean {
    return this.state === null;
  }

  /** Bytes of an unfinished character are waiting for the next token (no mask meanwhile). */
  get midCharacter(): boolean {
    return this.pending.length > 0;
  }

  /** Follow a token llama.cpp accepted (end-of-generation tokens change nothing). */
  accept(token: number): void {
    if (!this.state || this.masker.isEog(token)) return;
    const bytes = this.masker.bytesOf(token);
    const d = bytes ? decode(this.pending.length > 0 ? [...this.pending, ...bytes] : bytes) : null;
    if (!d) {
      this.state = null;
      return;
    }
    try {
      for (const cp of d.cps) {
        this.state = this.mirror.step(this.state, cp);
        if (!this.state) return;
      }
    } catch (err) {
      if (!(err instanceof MirrorLimitError)) throw err;
      this.state = null;
      return;
    }
    this.pending = d.rest;
  }

  /** Tokens that fit next, or null (no mask: too many fit, an unfinished character, or lost). */
  mask(): Uint32Array | null {
    if (!this.state || this.pending.length > 0) return null;
    try {
      return this.masker.mask(this.mirror, this.state);
    } catch (err) {
      if (!(err instanceof MirrorLimitError)) throw err;
      this.state = null;
      return null;
    }
  }

  /**
   * Tokens llama.cpp refused at this exact position before (free draws that did not fit). The
   * position alone decides what fits, so banning them there is exact; a model that keeps
   * proposing the same misfits (a quote inside a string) stops paying a draw for each.
   */
  refusedHere(): readonly number[] {
    return this.state && this.pending.length === 0 ? (this.state.refused ?? NONE) : NONE;
  }

  noteRefused(token: number): void {
    if (!this.state || this.pending.length > 0) return;
    const list = (this.state.refused ??= []);
    if (list.length < MAX_REFUSED && !list.includes(token)) list.push(token);
  }

  clone(): MirrorTracker {
    return new MirrorTracker(this.mirror, this.masker, this.state, [...this.pending]);
  }
}
