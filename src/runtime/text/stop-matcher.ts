/**
 * Finds stop sequences in streamed text. Text that might be the start of a stop sequence is held
 * back until the next chunk decides it, so a client never sees part of a stop string.
 * Pure: no I/O, no clocks.
 */
export interface StopResult {
  /** Text safe to send now. */
  emit: string;
  /** A stop sequence was found; nothing after it may be sent. */
  stopped: boolean;
}

export class StopMatcher {
  /** The stop sequence that ended the text (Anthropic's `stop_sequence`), null while none has. */
  matched: string | null = null;
  private held: string;
  private readonly longest: number;

  /** `held` restores a `snapshot()` (a suspended request resuming). */
  constructor(
    private readonly stops: readonly string[],
    held = '',
  ) {
    this.longest = stops.reduce((m, s) => Math.max(m, s.length), 0);
    this.held = held;
  }

  snapshot(): string {
    return this.held;
  }

  push(text: string): StopResult {
    if (this.stops.length === 0) return { emit: text, stopped: false };
    const buf = this.held + text;
    let first = -1;
    for (const s of this.stops) {
      const at = buf.indexOf(s);
      if (at !== -1 && (first === -1 || at < first)) {
        first = at;
        this.matched = s;
      }
    }
    if (first !== -1) {
      this.held = '';
      return { emit: buf.slice(0, first), stopped: true };
    }
    const keep = this.partialSuffixLength(buf);
    this.held = buf.slice(buf.length - keep);
    return { emit: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** Text held back when generation ends for another reason. */
  flush(): string {
    const out = this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop sequence. */
  private partialSuffixLength(buf: string): number {
    const max = Math.min(buf.length, this.longest - 1);
    for (let len = max; len > 0; len--) {
      const tail = buf.slice(buf.length - len);
      if (this.stops.some((s) => s.startsWith(tail))) return len;
    }
    return 0;
  }
}
