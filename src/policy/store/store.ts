/**
 * What a policy store is, whichever backend holds it (the encrypted file, policy-store.ts, or
 * Redis, redis-policy-store.ts): its own module so both backends implement it without importing
 * each other.
 */
import type { PolicyPersistence } from '../policy-service.js';
import type { PolicyDocument } from '../types.js';

export interface PolicyStore extends PolicyPersistence {
  readonly path: string;
  readonly encrypted: boolean;
  /** The stored document, or null when there is no file yet. Throws `PolicyStoreError` on a bad file. */
  load(): Promise<PolicyDocument | null>;
  /** Atomic, durable write; `policy_conflict` when the file already holds this version or a newer one. */
  save(doc: PolicyDocument): Promise<void>;
  /** Calls `onDoc` with every newer document found on disk; returns an unsubscribe function. */
  watch(onDoc: (doc: PolicyDocument) => void): () => void;
  close(): Promise<void>;
}
