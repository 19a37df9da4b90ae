/**
 * The live policy: one versioned `PolicyDocument` in memory that request-path code reads
 * synchronously (no I/O per request), and that the admin API and the policy store replace as a
 * whole. Readers subscribe to be told of a new version (key registry, rate limiter, guardrails
 * rebuild their compiled forms once per change, not per request).
 */
import type { PolicyDocument } from './types.js';

export type PolicyListener = (doc: PolicyDocument, previous: PolicyDocument) => void;

/** Persists documents; the encrypted policy store implements it. */
export interface PolicyPersistence {
  /** Write atomically; resolves once durable. */
  save(doc: PolicyDocument): Promise<void>;
}

export class PolicyService {
  private doc: PolicyDocument;
  private readonly listeners = new Set<PolicyListener>();
  /** Updates run one at a time so versions never fork. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    initial: PolicyDocument,
    private persistence: PolicyPersistence | null = null,
  ) {
    this.doc = freeze(initial);
  }

  get current(): PolicyDocument {
    return this.doc;
  }

  setPersistence(p: PolicyPersistence | null): void {
    this.persistence = p;
  }

  subscribe(listener: PolicyListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Apply an admin change: `mutate` gets a deep copy and returns the next document (without
   * version bookkeeping); it is persisted before it takes effect, then listeners run.
   */
  update(mutate: (draft: PolicyDocument) => PolicyDocument | void): Promise<PolicyDocument> {
    const run = async (): Promise<PolicyDocument> => {
      const draft = structuredClone(this.doc) as PolicyDocument;
      const next = (mutate(draft) ?? draft) as PolicyDocument;
      next.version = this.doc.version + 1;
      next.updatedAt = new Date().toISOString();
      if (this.persistence) await this.persistence.save(next);
      this.install(next);
      return this.doc;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * Adopt a document another replica wrote (store watch). Older or equal versions are ignored,
   * so a replica never goes back in time.
   */
  adopt(doc: PolicyDocument): boolean {
    if (doc.version <= this.doc.version) return false;
    this.install(doc);
    return true;
  }

  private install(next: PolicyDocument): void {
    const previous = this.doc;
    this.doc = freeze(next);
    for (const l of this.listeners) l(this.doc, previous);
  }
}

function freeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) freeze(v);
    Object.freeze(value);
  }
  return value;
}
