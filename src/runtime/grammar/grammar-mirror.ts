/**
 * A TypeScript copy of llama.cpp's grammar matcher (src/llama-grammar.cpp: a set of stacks of
 * grammar positions, advanced one code point at a time), so the engine can know which tokens fit
 * a constrained generation before sampling (runtime/llama/token-masks.ts).
 *
 * Why: node-llama-cpp's sampler samples freely, checks that one token against the grammar and,
 * when it does not fit, runs llama.cpp's grammar over the whole vocabulary (~2.2 ms for 32000
 * tokens, bench/README.md). Where few tokens fit (digits, punctuation, a key name) the free pick
 * almost never does, so that pass ran on nearly every token. Knowing the fitting tokens here lets
 * the engine bias them so the first pick fits; llama.cpp's grammar stays the authority and still
 * checks every token.
 *
 * States are interned (one object per distinct stack set) and transitions memoised per code
 * point, so a generation that walks the same grammar again costs a map lookup per character.
 */
import type { GbnfRules } from './gbnf-check.js';

const END = 0;
const CHARS = 1;
const REF = 2;

/** A stack of grammar positions, shared by structure; `EMPTY` is the completed stack. */
interface StackNode {
  readonly id: number;
  readonly pos: number;
  readonly next: StackNode | null;
}

/** One distinct set of stacks: where a generation stands in the grammar. */
export interface MirrorState {
  readonly key: string;
  /** The grammar may end here (llama.cpp then lets end-of-generation tokens through). */
  readonly completed: boolean;
  /** Stacks whose top is a character element (the ones that can take another character). */
  readonly open: readonly StackNode[];
  /** @internal memoised `step` results (null = the code point does not fit). */
  readonly next: Map<number, MirrorState | null>;
  /** Memoised token mask for this state (token-masks.ts); undefined = not computed yet. */
  mask?: Uint32Array | null;
  /** Tokens llama.cpp refused here (token-masks.ts, MirrorTracker.noteRefused). */
  refused?: number[];
}

/** Thrown when a grammar is too ambiguous or deep to mirror cheaply; callers stop mirroring. */
export class MirrorLimitError extends Error {}

/** Stacks kept per state before giving up (ambiguous grammars multiply stacks). */
const MAX_STACKS = 256;
/** Rule expansions without consuming a character before giving up (llama.cpp refuses left recursion). */
const MAX_EXPANSION_DEPTH = 512;
/** Interned states and stack nodes kept before the tables are dropped and rebuilt on demand. */
const MAX_INTERNED = 50_000;

export class GrammarMirror {
  private readonly kind: Uint8Array;
  /** Per position: sorted [lo, hi] pairs (CHARS). */
  private readonly ranges: (Uint32Array | null)[];
  private readonly negated: Uint8Array;
  /** Per position: the rule index (REF). */
  private readonly ref: Int32Array;
  /** Per rule: the positions where its alternatives start. */
  private readonly alternatives: Int32Array[];
  private nodes = new Map<string, StackNode>();
  private states = new Map<string, MirrorState>();
  private nextId = 1;
  private readonly empty: StackNode = { id: 0, pos: -1, next: null };
  readonly start: MirrorState;

  constructor(grammar: GbnfRules) {
    // Flatten: every alternative is a run of positions closed by an END position.
    const kinds: number[] = [];
    const ranges: (Uint32Array | null)[] = [];
    const negated: number[] = [];
    const refs: number[] = [];
    this.alternatives = grammar.rules.map((alts) =>
      Int32Array.from(alts, (seq) => {
        const at = kinds.length;
        for (const el of seq) {
          if (el.kind === 'chars') {
            kinds.push(CHARS);
            ranges.push(Uint32Array.from(el.ranges));
            negated.push(el.negated ? 1 : 0);
            refs.push(-1);
          } else {
            kinds.push(REF);
            ranges.push(null);
            negated.push(0);
            refs.push(el.rule);
          }
        }
        kinds.push(END);
        ranges.push(null);
        negated.push(0);
        refs.push(-1);
        return at;
      }),
    );
    this.kind = Uint8Array.from(kinds);
    this.ranges = ranges;
    this.negated = Uint8Array.from(negated);
    this.ref = Int32Array.from(refs);
    const out = new Map<number, StackNode>();
    for (const alt of this.alternatives[grammar.root]!) this.advance(this.push(alt, this.empty), out, 0);
    this.start = this.intern(out);
  }

  /** The state after one more code point, or null when it does not fit. */
  step(state: MirrorState, cp: number): MirrorState | null {
    const known = state.next.get(cp);
    if (known !== undefined) return known;
    const out = new Map<number, StackNode>();
    for (const node of state.open) {
      if (this.matches(node.pos, cp)) this.advance(this.push(node.pos + 1, node.next!), out, 0);
    }
    const next = out.size === 0 ? null : this.intern(out);
    state.next.set(cp, next);
    return next;
  }

  /** Whether some open stack takes a code point above `cp` (a class reaching past it). */
  acceptsAbove(state: MirrorState, cp: number): boolean {
    for (const node of state.open) {
      const r = this.ranges[node.pos]!;
      if (this.negated[node.pos] === 1) {
        // A negated class takes everything above `cp` unless one range covers it all.
        let covered = false;
        for (let i = 0; i < r.length; i += 2) if (r[i]! <= cp + 1 && r[i + 1]! >= 0x10ffff) covered = true;
        if (!covered) return true;
      } else {
        for (let i = 1; i < r.length; i += 2) if (r[i]! > cp) return true;
      }
    }
    return false;
  }

  private matches(pos: number, cp: number): boolean {
    const r = this.ranges[pos]!;
    let inside = false;
    for (let i = 0; i < r.length; i += 2) {
      if (cp >= r[i]! && cp <= r[i + 1]!) {
        inside = true;
        break;
      }
    }
    return inside !== (this.negated[pos] === 1);
  }

  /** `pos` on top of `rest`, or `rest` itself when `pos` ends its alternative. */
  private push(pos: number, rest: StackNode): StackNode {
    if (this.kind[pos] === END) return rest;
    const key = `${pos}:${rest.id}`;
    let node = this.nodes.get(key);
    if (!node) {
      node = { id: this.nextId++, pos, next: rest };
      this.nodes.set(key, node);
    }
    return node;
  }

  /** llama_grammar_advance_stack: expand rule references on top until a character element (or nothing) is on top. */
  private advance(node: StackNode, out: Map<number, StackNode>, depth: number): void {
    if (out.has(node.id)) return;
    if (node === this.empty || this.kind[node.pos] === CHARS) {
      out.set(node.id, node);
      if (out.size > MAX_STACKS) throw new MirrorLimitError(`more than ${MAX_STACKS} grammar stacks`);
      return;
    }
    if (depth > MAX_EXPANSION_DEPTH) throw new MirrorLimitError('grammar rules expand too deep');
    const rest = this.push(node.pos + 1, node.next!);
    for (const alt of this.alternatives[this.ref[node.pos]!]!) this.advance(this.push(alt, rest), out, depth + 1);
  }

  private intern(stacks: Map<number, StackNode>): MirrorState {
    const ids = [...stacks.keys()].sort((a, b) => a - b);
    const key = ids.join(',');
    let state = this.states.get(key);
    if (!state) {
      if (this.states.size >= MAX_INTERNED || this.nodes.size >= MAX_INTERNED) {
        // States already handed out stay valid (they hold their own stacks); only sharing is lost.
        this.states = new Map();
        this.nodes = new Map();
      }
      const open = [...stacks.values()].filter((n) => n !== this.empty);
      state = { key, completed: stacks.has(this.empty.id), open, next: new Map() };
      this.states.set(key, state);
    }
    return state;
  }
}
