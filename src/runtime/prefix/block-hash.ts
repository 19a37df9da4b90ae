/**
 * Prefix fingerprints for placement: a rolling hash at every `BLOCK`-token boundary, each hash
 * covering all tokens before it, so two token sequences share their first k block hashes exactly
 * when they share their first k*BLOCK tokens (up to hash collisions, which only cost a worse
 * placement, never a wrong answer: the engine compares real tokens before reusing any KV).
 * The gateway fingerprints prompts; engines fingerprint what their sequences hold.
 */

/** Tokens per block. Small enough for short system prompts, large enough to keep lists short. */
export const BLOCK = 32;
/** Blocks fingerprinted at most (prefixes beyond 8k tokens place like 8k). */
export const MAX_BLOCKS = 256;

/**
 * What a fingerprint's salt is made of: the LoRA adapter's key ('' for the base model) and the
 * request's cache salt ('' when shared). The gateway and the engines must salt alike.
 */
export function blockSalt(adapterKey: string, cacheSalt: string): string {
  return cacheSalt === '' ? adapterKey : `${adapterKey}#${cacheSalt}`;
}

/**
 * `salt` names what else the KV depends on or who may reuse it (`blockSalt`): the same tokens
 * under another adapter or cache salt share no block, so placement never counts them as cached.
 */
export function prefixBlocks(tokens: ArrayLike<number>, salt = ''): number[] {
  const out: number[] = [];
  let h = 0x811c9dc5;
  for (let i = 0; i < salt.length; i++) h = Math.imul(h ^ salt.charCodeAt(i), 0x01000193) >>> 0;
  const n = Math.min(tokens.length, BLOCK * MAX_BLOCKS);
  for (let i = 0; i < n; i++) {
    // FNV-1a over the token's 4 bytes.
    let t = tokens[i]!;
    for (let b = 0; b < 4; b++) {
      h ^= t & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
      t >>>= 8;
    }
    if ((i + 1) % BLOCK === 0) out.push(h);
  }
  return out;
}

/** Leading blocks two fingerprints share. */
export function sharedBlocks(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
