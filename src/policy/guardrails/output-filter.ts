/**
 * Guardrails on generated text as it streams, for one choice. Like a stop-string matcher, it holds
 * back only the tail that could still turn into a match: for the blocklist the longest tail that
 * starts a term (a whole-word term needs the character after it); for PII the earliest place a
 * match may still be forming (`piiLiveStart`: an email's local part or domain, a run starting like
 * a vendor key, a number with phone or card separators, an IBAN, `key: value`), and any match
 * touching the end. Everything before that is final: redacted and released. So prose streams one
 * word behind, and a number is released as soon as the character after it shows it is no phone
 * or card.
 *
 * Pure: no clocks, no I/O. The sink wrapper (guarded-sink.ts) drives it.
 */
import { visibleSuffixStart, type Blocklist } from './blocklist.js';
import { findPii, piiLiveStart, PII_MAX_RUN, redact, type PiiMatch } from './pii.js';
import type { PiiKind } from '../types.js';

export interface OutputRules {
  blocklist: Blocklist;
  piiAction: 'off' | 'redact' | 'block';
  piiKinds: ReadonlySet<PiiKind>;
}

export type FilterStep =
  | { kind: 'emit'; text: string; redacted: PiiKind[] }
  | { kind: 'deny'; reason: string };

/**
 * Released text kept for look-behind (word boundaries, terms spanning a release point), counted in
 * characters that survive normalisation, so zero-width padding cannot push a term's start out.
 */
const CONTEXT_CHARS = 64;

export class OutputFilter {
  private held = '';
  private context = '';
  private readonly pii: boolean;

  constructor(private readonly rules: OutputRules) {
    this.pii = rules.piiAction !== 'off' && rules.piiKinds.size > 0;
  }

  /** True when the filter can change nothing (no terms, no PII kinds): callers may skip it. */
  get inert(): boolean {
    return !this.pii && this.rules.blocklist.maxTermLength === 0;
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
      // Scan with the released context in front, so look-behinds (`not after a letter`) see the
      // characters before a release point; spans are then made relative to `held`.
      const ctx = this.context.length;
      matches = findPii(this.context + held, this.rules.piiKinds)
        .filter((m) => m.start >= ctx)
        .map((m) => ({ ...m, start: m.start - ctx, end: m.end - ctx, ...(m.from !== undefined ? { from: Math.max(0, m.from - ctx) } : {}) }));
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
    const context = this.context + released;
    this.context = context.slice(visibleSuffixStart(context, CONTEXT_CHARS));
    return { kind: 'emit', text: redact(released, inside), redacted: inside.map((m) => m.kind) };
  }

  private releasePoint(held: string, matches: PiiMatch[]): number {
    let cut = held.length - this.rules.blocklist.holdBack(this.context + held);
    if (cut <= 0 || !this.pii) return cut;
    cut = Math.min(cut, piiLiveStart(held, this.rules.piiKinds));
    // Each rule below only moves the cut back, so apply them until neither moves it.
    for (let last = -1; cut > 0 && cut !== last; ) {
      last = cut;
      // Never cut through a match, nor release the start of one that touches the end.
      for (const m of matches) {
        const from = m.from ?? m.start;
        if (from < cut && (m.end > cut || m.end === held.length)) cut = from;
      }
      // Never cut inside an unbroken run: an email or key may be longer than the hold.
      if (cut > 0 && cut < held.length && !/\s/.test(held[cut - 1]!) && !/\s/.test(held[cut]!)) {
        const floor = Math.max(0, cut - PII_MAX_RUN);
        let j = cut - 1;
        while (j >= floor && !/\s/.test(held[j]!)) j--;
        if (j >= floor) cut = j + 1;
        else if (floor === 0) cut = 0; // the run starts the held text: hold it all
      }
    }
    return cut;
  }
}
