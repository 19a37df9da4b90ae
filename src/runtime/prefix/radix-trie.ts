/**
 * A compressed radix trie over token ids, for one namespace (the prefix cache keeps one trie per
 * model + adapter + context layout, see `prefixNamespace()`).
 *
 * Each edge carries a run of tokens as a `Uint32Array`, so a 100k-token key with no neighbours is
 * one node, not 100k objects. Children are keyed by the first token of their run. Inserting a key
 * that diverges inside a run splits that run: both halves become `subarray()` views of the same
 * buffer, so a split copies nothing. Only the new, unshared suffix of an inserted key is copied.
 * Deleting merges a valueless node with its only child (one copy of the two runs), so the trie
 * stays compressed.
 *
 * Values live at the node whose path spells exactly the key they were inserted with. A node may
 * exist without a value: it is a branch point shared by longer keys. That difference is what
 * `match()` reports: `length` is the longest stored key that is a prefix of the query (a snapshot
 * that can be reused), `matched` is the longest common prefix with any stored key (tokens some
 * other snapshot or live sequence also starts with).
 *
 * Everything is synchronous and O(key length); nothing here allocates per token.
 */

/** Token ids (integers in [0, 2^32)); a `Uint32Array` is used as is, a `number[]` is read element by element. */
export type TokenSeq = Uint32Array | readonly number[];

/** @internal */
interface TrieNode<V> {
  /** Tokens on the edge from the parent to this node. Empty only for the root. */
  run: Uint32Array;
  /** Children keyed by the first token of their run; null while a leaf. */
  children: Map<number, TrieNode<V>> | null;
  hasValue: boolean;
  value: V | undefined;
}

export interface TrieMatch<V> {
  /** Value of the longest stored key that is a prefix of the query, or undefined. */
  value: V | undefined;
  /** Length of that key; 0 when there is none (or when only the empty key holds a value). */
  length: number;
  /** Whether `value` is set (a stored value may itself be `undefined`). */
  found: boolean;
  /** Longest common prefix of the query with any stored key, value or not. Always >= `length`. */
  matched: number;
}

const EMPTY = new Uint32Array(0);

/** Copy `tokens[start..]` into a fresh, compact `Uint32Array`. */
function copyRun(tokens: TokenSeq, start: number): Uint32Array {
  if (tokens instanceof Uint32Array) return tokens.slice(start);
  const out = new Uint32Array(tokens.length - start);
  for (let i = 0; i < out.length; i++) out[i] = tokens[start + i]!;
  return out;
}

/** Number of leading tokens `run` shares with `tokens[off..]`. */
function commonRun(run: Uint32Array, tokens: TokenSeq, off: number): number {
  const n = Math.min(run.length, tokens.length - off);
  let i = 0;
  while (i < n && run[i] === tokens[off + i]) i++;
  return i;
}

function concatRuns(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export class RadixTrie<V> {
  private readonly root: TrieNode<V> = { run: EMPTY, children: null, hasValue: false, value: undefined };
  private count = 0;

  /** Number of stored keys (keys with a value). */
  get size(): number {
    return this.count;
  }

  /**
   * Store `value` under exactly `tokens`, replacing any value there.
   * Returns true when the key is new, false when a value was replaced.
   */
  insert(tokens: TokenSeq, value: V): boolean {
    let node = this.root;
    let i = 0;
    for (;;) {
      if (i === tokens.length) {
        const isNew = !node.hasValue;
        node.hasValue = true;
        node.value = value;
        if (isNew) this.count++;
        return isNew;
      }
      const first = tokens[i]!;
      const child = node.children?.get(first);
      if (child === undefined) {
        const leaf: TrieNode<V> = { run: copyRun(tokens, i), children: null, hasValue: true, value };
        (node.children ??= new Map()).set(first, leaf);
        this.count++;
        return true;
      }
      const run = child.run;
      const n = commonRun(run, tokens, i);
      if (n < run.length) {
        // Split the child's run at n: `mid` takes the shared head, the child keeps the tail.
        // Both are views of the same buffer, so nothing is copied.
        const mid: TrieNode<V> = {
          run: run.subarray(0, n),
          children: new Map([[run[n]!, child]]),
          hasValue: false,
          value: undefined,
        };
        child.run = run.subarray(n);
        node.children!.set(first, mid);
        node = mid;
      } else {
        node = child;
      }
      i += n;
    }
  }

  /** The value stored under exactly `tokens`, or undefined. */
  get(tokens: TokenSeq): V | undefined {
    const node = this.find(tokens);
    return node?.hasValue ? node.value : undefined;
  }

  /** Whether a value is stored under exactly `tokens`. */
  has(tokens: TokenSeq): boolean {
    return this.find(tokens)?.hasValue === true;
  }

  /**
   * One walk down the query: the longest stored key that is a prefix of `tokens` (reusable as
   * is) and the longest common prefix with any stored key (shared, but not by a stored value).
   */
  match(tokens: TokenSeq): TrieMatch<V> {
    let node = this.root;
    let i = 0;
    let found = node.hasValue;
    let value = node.value;
    let length = 0;
    while (i < tokens.length) {
      const child = node.children?.get(tokens[i]!);
      if (child === undefined) break;
      const n = commonRun(child.run, tokens, i);
      i += n;
      if (n < child.run.length) break;
      node = child;
      if (node.hasValue) {
        found = true;
        value = node.value;
        length = i;
      }
    }
    return { value, length, found, matched: i };
  }

  /** The longest stored key that is a prefix of `tokens`, with its value; null when none is. */
  longestPrefix(tokens: TokenSeq): { value: V; length: number } | null {
    const m = this.match(tokens);
    return m.found ? { value: m.value as V, length: m.length } : null;
  }

  /** Longest common prefix of `tokens` with any stored key, whether or not a value sits there. */
  matchLength(tokens: TokenSeq): number {
    return this.match(tokens).matched;
  }

  /**
   * Remove the value stored under exactly `tokens`. Returns whether one was there. Prunes nodes
   * left without value or children and re-merges runs, so the trie stays compressed.
   */
  delete(tokens: TokenSeq): boolean {
    const path: TrieNode<V>[] = [this.root];
    let node = this.root;
    let i = 0;
    while (i < tokens.length) {
      const child = node.children?.get(tokens[i]!);
      if (child === undefined) return false;
      const n = commonRun(child.run, tokens, i);
      if (n < child.run.length) return false;
      i += n;
      node = child;
      path.push(node);
    }
    if (!node.hasValue) return false;
    node.hasValue = false;
    node.value = undefined;
    this.count--;
    // Walk back up: drop empty leaves, merge valueless single-child nodes into their child.
    for (let d = path.length - 1; d > 0; d--) {
      const cur = path[d]!;
      const parent = path[d - 1]!;
      if (cur.hasValue) break;
      const kids = cur.children?.size ?? 0;
      if (kids === 0) {
        parent.children!.delete(cur.run[0]!);
        if (parent.children!.size === 0) parent.children = null;
        continue; // the parent may now be a valueless single-child node
      }
      if (kids === 1) {
        const only = cur.children!.values().next().value as TrieNode<V>;
        only.run = concatRuns(cur.run, only.run);
        parent.children!.set(only.run[0]!, only);
      }
      break;
    }
    return true;
  }

  /** Remove everything. */
  clear(): void {
    this.root.children = null;
    this.root.hasValue = false;
    this.root.value = undefined;
    this.count = 0;
  }

  /** Number of nodes below the root (for tests and memory accounting). */
  nodeCount(): number {
    let n = 0;
    const stack: TrieNode<V>[] = [this.root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.children) for (const c of node.children.values()) (n++, stack.push(c));
    }
    return n;
  }

  /**
   * Every stored key with its value, depth first (children in insertion order). Keys are fresh
   * copies. Do not mutate the trie while iterating.
   */
  *entries(): Generator<[Uint32Array, V]> {
    // Explicit stack: keys can be very deep, and nested generators would recurse per level.
    const stack: Array<{ node: TrieNode<V>; runs: Uint32Array[]; len: number }> = [
      { node: this.root, runs: [], len: 0 },
    ];
    while (stack.length > 0) {
      const { node, runs, len } = stack.pop()!;
      if (node.hasValue) {
        const key = new Uint32Array(len);
        let off = 0;
        for (const r of runs) (key.set(r, off), (off += r.length));
        yield [key, node.value as V];
      }
      if (node.children) {
        const kids = [...node.children.values()];
        for (let k = kids.length - 1; k >= 0; k--) {
          const c = kids[k]!;
          stack.push({ node: c, runs: [...runs, c.run], len: len + c.run.length });
        }
      }
    }
  }

  /** Every stored value (same order as `entries()`). */
  *values(): Generator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): Generator<[Uint32Array, V]> {
    return this.entries();
  }

  private find(tokens: TokenSeq): TrieNode<V> | null {
    let node = this.root;
    let i = 0;
    while (i < tokens.length) {
      const child = node.children?.get(tokens[i]!);
      if (child === undefined) return null;
      const n = commonRun(child.run, tokens, i);
      if (n < child.run.length) return null;
      i += n;
      node = child;
    }
    return node;
  }
}
