/**
 * The audit log's tamper-evident hash chain (pure: no I/O; the writer and the verifier share it).
 *
 * Every line is one JSON object ending in two fields the writer adds: `seq`, a counter that grows
 * by one per line, and `prev`, the SHA-256 (hex) of the previous line's exact bytes (UTF-8,
 * without its `\n`). The first line of a new chain has `seq` 0 and `prev` = SHA-256 of
 * `GENESIS`. The chain runs on across rotation (the first line of a fresh `audit.log` points at
 * the last line of `audit.log.1`) and across restarts (the writer reads the last line back).
 *
 * What it proves: editing a line breaks the next line's `prev`; deleting lines leaves a `seq`
 * gap as well; reordering breaks both. What it cannot prove on its own: that nobody cut lines
 * off the end (the separate checkpoint, checkpoint.ts, covers that), or dropped whole rotated
 * files from the start (their successor's `prev` then has nothing to match, and the verifier
 * reports where it anchored).
 */
import { createHash } from 'node:crypto';

export const GENESIS = 'inferflux-audit-chain-v1';
export const GENESIS_HASH = sha256Hex(GENESIS);

export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The chain position after some line: what the next line must carry. */
export interface ChainState {
  /** `seq` of the next line. */
  seq: number;
  /** `prev` of the next line. */
  prev: string;
}

export function genesisState(): ChainState {
  return { seq: 0, prev: GENESIS_HASH };
}

/**
 * JSON.stringify escapes CR, LF and every C0 control, but leaves U+0085, U+2028 and U+2029 raw;
 * some line readers (Python's `splitlines`, some log shippers) treat those as line breaks too.
 */
export function escapeLineBreaks(json: string): string {
  return json.replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Serialises one event as the next chain line (without `\n`) and advances `state`. */
export function chainLine(event: object, state: ChainState): string {
  // Spread first so an event can never bring its own seq/prev.
  const line = escapeLineBreaks(JSON.stringify({ ...event, seq: state.seq, prev: state.prev }));
  state.seq += 1;
  state.prev = sha256Hex(line);
  return line;
}

/** The state following an existing line, or null when the line is not a chain line. */
export function stateAfter(line: string): ChainState | null {
  try {
    const v = JSON.parse(line) as { seq?: unknown };
    if (typeof v.seq !== 'number' || !Number.isInteger(v.seq) || v.seq < 0) return null;
    return { seq: v.seq + 1, prev: sha256Hex(line) };
  } catch {
    return null;
  }
}

export interface ChainProblem {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  kind: 'altered' | 'missing' | 'malformed' | 'truncated' | 'checkpoint';
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  lines: number;
  /** The first problem found (verification names the first altered or missing line). */
  problem: ChainProblem | null;
  /** How the first line was accepted: `genesis`, or `anchored` (earlier files rotated away). */
  start: 'genesis' | 'anchored' | 'empty';
  /** The last line's file, line number, `seq` and hash (null for an empty log). */
  last: { file: string; line: number; seq: number; hash: string } | null;
  /** The line whose `seq` was asked for (`verifyChain`'s `findSeq`), if it was seen. */
  found: { file: string; line: number; hash: string } | null;
}

interface Prev {
  file: string;
  line: number;
  hash: string;
  seq: number;
}

/**
 * Verifies files given oldest first (`audit.log.N` … `audit.log.1`, `audit.log`), each as its
 * lines (without `\n`; a final empty string from a trailing newline is dropped by the caller).
 */
export function verifyChain(files: { file: string; lines: string[] }[], findSeq = -1): VerifyReport {
  let prev: Prev | null = null;
  let start: VerifyReport['start'] = 'empty';
  let count = 0;
  let found: VerifyReport['found'] = null;
  const fail = (problem: ChainProblem): VerifyReport => ({ ok: false, lines: count, problem, start, last: prev, found });
  for (const { file, lines } of files) {
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!;
      const at = { file, line: i + 1 };
      let v: { seq?: unknown; prev?: unknown };
      try {
        v = JSON.parse(text) as typeof v;
      } catch {
        return fail({ ...at, kind: 'malformed', message: 'not a JSON object (altered or torn)' });
      }
      if (v === null || typeof v !== 'object' || typeof v.seq !== 'number' || typeof v.prev !== 'string' || !/^[0-9a-f]{64}$/.test(v.prev)) {
        return fail({ ...at, kind: 'malformed', message: 'no valid seq/prev chain fields (altered, or not written by the chain writer)' });
      }
      const seq = v.seq;
      if (prev === null) {
        start = v.prev === GENESIS_HASH && seq === 0 ? 'genesis' : 'anchored';
      } else if (v.prev !== prev.hash) {
        if (seq === prev.seq + 1) {
          return fail({ file: prev.file, line: prev.line, kind: 'altered', message: `line altered: its hash no longer matches the prev of ${file}:${i + 1}` });
        }
        if (seq > prev.seq + 1) {
          const n = seq - prev.seq - 1;
          return fail({ ...at, kind: 'missing', message: `${n} line(s) missing before this line (seq ${prev.seq + 1}..${seq - 1})` });
        }
        return fail({ ...at, kind: 'altered', message: `line altered or out of order (seq ${seq} after ${prev.seq})` });
      } else if (seq !== prev.seq + 1) {
        return fail({ ...at, kind: 'altered', message: `seq ${seq} does not follow ${prev.seq}` });
      }
      prev = { file, line: i + 1, hash: sha256Hex(text), seq };
      if (seq === findSeq) found = { file, line: i + 1, hash: prev.hash };
      count++;
    }
  }
  return { ok: true, lines: count, problem: null, start, last: prev, found };
}
