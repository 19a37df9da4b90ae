/**
 * Guardrails on generated text as it streams, for one choice. Like a stop-string matcher, it holds
 * back the tail that could still turn into a match: the last `maxTermLength` characters for the
 * blocklist (a whole-word term needs the character after it), and for PII the last
 * `PII_MAX_SPAN` characters plus any unbroken run (an email or key still growing) and any match
 * touching the end. Everything before that is final: redacted and released.
 *
 * Pure: no clocks, no I/O. The sink wrapper (guarded-sink.ts) drives it.
 */
import type { Blocklist } from './blocklist.js';
import { findPii, PII_MAX_SPAN, redact, type PiiMatch } from './pii.js';
import type { PiiKind } from '../types.js';

export interface OutputRules {
  blocklist: Blocklist;
  piiAction: 'off' | 'redact' | 'block';
  piiKinds: ReadonlySet<PiiKind>;
}

export type FilterStep =
  | { kind: 'emit'; text: string; redacted: PiiKind[] }
  | { kind: 'deny'; reason: string };

/** Released text kept for look-behind (word boundaries, terms spanning a release point). */
const CONTEXT_CHARS = 64;
/** An unbroken run longer than this is released anyway, so memory stays bounded. */
const MAX_RUN = 512;
/**
 * When the end of the text may be inside an unfinished PII span that can cross spaces: a run of
 * digits and separators reaching the end (phone, card, IBAN still growing), a key-ish word whose
 * value may still come (`token: ...`, `Bearer ...`), or a PEM header. Otherwise a finished span is
 * already whole in the text and only the trailing unbroken run (an email or key still growing) is
 * held back, so prose streams with no PII delay (holding 64 characters always cost several
 * tokens of TTFT).
 */
const PII_HINT = /\d[\d\s\-+().\/]*$|(?:key|secret|token|passw(?:or)?d?|bearer|auth)\w*["']?\s*[:=]?\s*["']?\S*$|-----/i;

export class OutputFilter {
  private held = '';
  private context = '';
  private readonly hold: number;
  private readonly pii: boolean;

  constructor(private readonly rules: OutputRules) {
    this.pii = rules.piiAction !== 'off' && rules.piiKinds.size > 0;
    this.hold = Math.max(rules.blocklist.maxTermLength, this.pii ? PII_MAX_SPAN : 0);
  }

  /** True when the filter can change nothing (no terms, no PII kinds): callers may skip it. */
  get inert(): boolean {
    return this.hold === 0;
  }

  /** Feed generated text; `final` at the end of the choice releases everything still held. */
  push(text: string, final = false): FilterStep {
    this.held += text;
    const held = this.held;
    if (held === '') return { kind: 'emit', text: '', redacted: [] };

    const scan = this.rules.blocklist.scan(this.context + held, final);
    if (scan.kind === 'hit') return { kind: 'deny', reason: 'blocklist' };

    let matches: PiiMatch[] = [];
    if (this.pii) {
      matches = findPii(held, this.rules.piiKinds);
      if (this.rules.piiAction === 'block') {
        // A match touching the end may still grow or (cards, IBANs) stop being valid: wait.
        const settled = matches.find((m) => final || m.end < held.length);
        if (settled) return { kind: 'deny', reason: `pii_${settled.kind}` };
      }
    }

    const cut = final ? held.length : this.releasePoint(held, matches);
    if (cut <= 0) return { kind: 'emit', text: '', redacted: [] };
    const released = held.slice(0, cut);
    const inside = this.rules.piiAction === 'redact' ? matches.filter((m) => m.end <= cut) : [];
    this.held = held.slice(cut);
    this.context = (this.context + released).slice(-CONTEXT_CHARS);
    return { kind: 'emit', text: redact(released, inside), redacted: inside.map((m) => m.kind) };
  }

  private releasePoint(held: string, matches: PiiMatch[]): number {
    const termHold = this.rules.blocklist.holdBack(this.context + held);
    const hint = this.pii && PII_HINT.test((this.context + held).slice(-(PII_MAX_SPAN + 16)));
    let cut = held.length - (hint ? this.hold : termHold);
    if (cut <= 0 || !this.pii) return cut;
    if (!hint) {
      // The trailing unbroken run may still become an email or a key: hold it (bounded).
      let i = held.length;
      while (i > 0 && held.length - i < MAX_RUN && !/\s/.test(held[i - 1]!)) i--;
      cut = Math.min(cut, i);
    }
    // Never cut through a match, nor release the start of one that touches the end.
    for (const m of matches) if (m.start < cut && (m.end > cut || m.end === held.length)) cut = m.start;
    // Never cut inside an unbroken run: an email or key may be longer than the hold.
    if (cut > 0 && cut < held.length && !/\s/.test(held[cut - 1]!) && !/\s/.test(held[cut]!)) {
      const floor = Math.max(0, cut - MAX_RUN);
      let i = cut - 1;
      while (i >= floor && !/\s/.test(held[i]!)) i--;
      if (i >= floor) cut = i + 1;
      else if (floor === 0) cut = 0; // the run starts the held text: hold it all
    }
    return cut;
  }
}
