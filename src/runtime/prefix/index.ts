/** The prefix cache's public surface; see `prefix-cache.ts` for how the pieces fit. */
export * from './radix-trie.js';
export * from './page-pool.js';
export * from './disk-tier.js';
export * from './snapshot-key.js';
export * from './prefix-cache.js';
export * from './response-cache.js';
