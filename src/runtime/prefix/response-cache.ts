/**
 * Exact-match response reuse, opt-in: the same namespace, the same prompt tokens and the same
 * resolved sampling parameters give the stored response instead of running the model.
 *
 * Only deterministic requests are cacheable:
 *   - greedy decoding (`temperature === 0`), or
 *   - a fixed integer `seed` (the sampler is seeded, so the draw is reproducible).
 * Pass the *resolved* parameters (defaults applied): a missing temperature means the server
 * default (1), which is not deterministic without a seed. Every parameter that can change the
 * output must be in `params` (max_tokens, stop, penalties, logit_bias, grammar, tools, n, …):
 * the key is a hash over all of them, in canonical (sorted-key) JSON, so nothing is left out
 * by accident. Caveat: llama.cpp output can differ with batch composition on some backends;
 * that is why this is opt-in.
 *
 * Bounded LRU by entry count and by bytes (as the caller measures its value). Synchronous; the
 * owner decides where it lives (main thread or scheduler).
 */
import { createHash } from 'node:crypto';
import type { TokenSeq } from './radix-trie.js';
import { toUint32 } from './snapshot-key.js';

export interface ResponseCacheOptions {
  /** Off unless set. Defaults to `false`. */
  enabled?: boolean;
  /** Most entries kept. Defaults to `1024`. */
  maxEntries?: number;
  /** Most bytes kept (sum of `set()` sizes). Defaults to `67108864` (64 MiB). */
  maxBytes?: number;
}

/** Resolved sampling parameters; any JSON-serialisable fields are part of the key. */
export interface SamplingKeyParams {
  temperature: number;
  seed?: number | null;
  [k: string]: unknown;
}

export type ResponseKey = string & { readonly __brand: 'ResponseKey' };

export interface ResponseCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  /** Requests not looked up because they are not deterministic. */
  uncacheable: number;
  evictions: number;
}

/** Whether resolved params make the output reproducible: greedy, or a fixed integer seed. */
export function isDeterministic(p: SamplingKeyParams): boolean {
  if (p.temperature === 0) return true;
  return typeof p.seed === 'number' && Number.isSafeInteger(p.seed);
}

/** JSON with object keys sorted at every level; `undefined` fields are left out. */
function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export class ResponseCache<V> {
  readonly enabled: boolean;
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** Map order = recency order, least recent first. */
  private readonly map = new Map<ResponseKey, { value: V; bytes: number }>();
  private bytes = 0;
  private readonly s = { hits: 0, misses: 0, uncacheable: 0, evictions: 0 };

  constructor(opts: ResponseCacheOptions = {}) {
    this.enabled = opts.enabled ?? false;
    this.maxEntries = opts.maxEntries ?? 1024;
    this.maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  }

  /** The cache key, or null when the request must not be cached (disabled or not deterministic). */
  keyFor(ns: string, promptTokens: TokenSeq, params: SamplingKeyParams): ResponseKey | null {
    if (!this.enabled) return null;
    if (!isDeterministic(params)) {
      this.s.uncacheable++;
      return null;
    }
    // Greedy output does not depend on the seed, so leave it out and share the entry.
    const keyed = params.temperature === 0 ? { ...params, seed: undefined } : params;
    const t = toUint32(promptTokens);
    return createHash('sha256')
      .update(canonicalJson([ns, keyed]), 'utf8')
      .update(new Uint8Array([0]))
      .update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength))
      .digest('hex') as ResponseKey;
  }

  /** The stored response (now most recently used), or undefined. */
  get(key: ResponseKey | null): V | undefined {
    if (key === null) return undefined;
    const hit = this.map.get(key);
    if (hit === undefined) {
      this.s.misses++;
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, hit);
    this.s.hits++;
    return hit.value;
  }

  /**
   * Store a complete response of `bytes` size (e.g. its UTF-8 length). Store only responses that
   * finished normally (not cancelled, not errored). Returns false when it cannot be kept.
   */
  set(key: ResponseKey | null, value: V, bytes: number): boolean {
    if (key === null || bytes > this.maxBytes || this.maxEntries < 1) return false;
    this.delete(key);
    this.map.set(key, { value, bytes });
    this.bytes += bytes;
    for (const [k, v] of this.map) {
      if (this.map.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.bytes;
      this.s.evictions++;
    }
    return true;
  }

  delete(key: ResponseKey): boolean {
    const old = this.map.get(key);
    if (old === undefined) return false;
    this.map.delete(key);
    this.bytes -= old.bytes;
    return true;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  stats(): ResponseCacheStats {
    return { entries: this.map.size, bytes: this.bytes, ...this.s };
  }
}
