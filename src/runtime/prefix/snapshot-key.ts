/**
 * Names for cached prefixes: the namespace a trie belongs to, and the id of one snapshot.
 */
import { createHash } from 'node:crypto';
import type { TokenSeq } from './radix-trie.js';

/** Hex id of one snapshot: a hash of (namespace, tokens). Same key, same id, across restarts. */
export type SnapshotId = string & { readonly __brand: 'SnapshotId' };

export interface NamespaceParts {
  /** Model id as clients name it. */
  model: string;
  /**
   * Identity of the weights file (e.g. GGUF size + mtime, or a content hash). A snapshot loaded
   * into a different model may crash llama.cpp (notes §3), and disk entries outlive the process,
   * so this must change whenever the file does.
   */
  modelFingerprint: string;
  /** LoRA adapter id, or null for the base model. */
  adapter?: string | null;
  /**
   * Anything else the saved state depends on, e.g. `seq=4` (llama.cpp refuses state saved from
   * a context with a different sequence count) or the KV cache type.
   */
  layout?: string;
}

/** The namespace string for one model + adapter + context layout. */
export function prefixNamespace(p: NamespaceParts): string {
  return JSON.stringify([p.model, p.modelFingerprint, p.adapter ?? null, p.layout ?? '']);
}

/** Token ids as a Uint32Array (no copy when it already is one). */
export function toUint32(tokens: TokenSeq): Uint32Array {
  return tokens instanceof Uint32Array ? tokens : Uint32Array.from(tokens);
}

/** sha256(namespace NUL tokens as little-endian u32), first 128 bits in hex. */
export function snapshotId(ns: string, tokens: TokenSeq): SnapshotId {
  const t = toUint32(tokens);
  return createHash('sha256')
    .update(ns, 'utf8')
    .update(new Uint8Array([0]))
    .update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength))
    .digest('hex')
    .slice(0, 32) as SnapshotId;
}
