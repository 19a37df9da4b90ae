/**
 * Every move of a sequence's KV cells in or out of the context, for one engine worker:
 *   - keep the prefix a sequence holds in the cache tiers before the sequence is reused, or ahead
 *     of that while the worker idles;
 *   - hydrate an admitted request: from its disaggregated hand-off (KV ring), from the state its
 *     suspension saved, or from a cached prefix;
 *   - save a suspended request's state to tmpfs.
 * Each runs between steps only (the step loop's `betweenSteps`, or before it waits idle). A load
 * that fails is never fatal: the sequence is cleared and the prompt prefilled again (slower, same
 * output).
 */
import { randomUUID } from 'node:crypto';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';
import type { BatchContext } from '../../runtime/llama/batch-adapter.js';
import type { PrefixHit } from '../../runtime/prefix/prefix-cache.js';
import type { AdmitBody } from '../protocol.js';
import { STATE_DIR } from './bootstrap.js';
import { MIN_COPY_GAIN_TOKENS, saltOf, type Admitted, type EngineCore, type SuspendedSlot } from './core.js';
import type { KvHandoff } from './handoff.js';
import type { KvTier } from './kv-tier.js';

const now = (): number => performance.timeOrigin + performance.now();

export class KvMoves {
  /** The sequence use `keepNextVictim` last saved (seq:lastUsed:tokens). */
  private idleKept = '';
  /**
   * Free sequences copied from since the last decode: locked until it has run, because the copy's
   * data moves then (BatchContext.copySequence) and an admission must not overwrite them first.
   */
  private copiedFrom: number[] = [];

  constructor(
    private readonly core: EngineCore<MessagePort>,
    private readonly batch: BatchContext,
    /** Host page pool + disk tier (null when disabled, and always on decode workers). */
    private readonly kv: KvTier | null,
    private readonly handoff: KvHandoff,
    private readonly worker: number,
    private readonly contextSize: number,
    private readonly log: (msg: string) => void,
  ) {}

  /** Before `req` takes a sequence: the sequence may hold a prefix worth keeping in the cache tiers. */
  async keepReusedPrefix(req: AdmitBody): Promise<void> {
    const preview = this.core.preview(req.tokens, saltOf(req));
    // Worth keeping is the previous request's prompt, not what it generated: the next turn of a
    // chat starts with that prompt, while its reply comes back re-rendered by the chat template.
    // A request that keeps the whole prompt (that next turn) loses only generated cells: no
    // snapshot, which would stall every stream of this worker for a copy of the conversation.
    if (!this.kv || !preview) return;
    const upto = Math.min(preview.residentPrompt, preview.resident.length);
    if (preview.keep < upto) await this.keepPrompt(preview.seq, preview.resident, upto, preview.residentSalt);
  }

  /**
   * Nothing runs or waits: save the prompt of the sequence the next new request will take, so its
   * admission finds it kept instead of saving it on the way in (6-19 ms for a ~190-token prompt of
   * the bench model, against ~190-250 ms to its first token; bench/README.md). Returns whether it
   * saved anything. A chat's next turn still finds its own sequence (`choose` prefers the longest
   * prefix); the one saved here is the least recently used, whose generated tail is dropped
   * either way once a new request takes it.
   */
  async keepNextVictim(): Promise<boolean> {
    const v = this.kv ? this.core.nextVictim() : null;
    if (!v) return false;
    const upto = Math.min(v.residentPrompt, v.resident.length);
    // Tried once per use of the sequence: a save that failed is not retried in a loop.
    const key = `${v.seq}:${v.lastUsed}:${upto}`;
    if (upto < this.kv!.minTokens || key === this.idleKept || this.kv!.holds(v.resident.slice(0, upto), v.residentSalt)) return false;
    this.idleKept = key;
    await this.keepPrompt(v.seq, v.resident, upto, v.residentSalt);
    return true;
  }

  /** Saves a free sequence's first `upto` cells (its prompt) to the cache tiers, under the salt of the request that computed them; the rest is trimmed. */
  private async keepPrompt(seq: number, resident: readonly number[], upto: number, salt: string): Promise<void> {
    if (upto < resident.length) {
      this.batch.trimSequence(seq, upto);
      this.core.truncateResident(seq, upto);
    }
    await this.kv!.keep(seq, resident.slice(0, upto), salt);
  }

  /** A decode ran: every copy made before it has its data now. */
  afterDecode(): void {
    for (const seq of this.copiedFrom) this.core.unlock(seq);
    this.copiedFrom = [];
  }

  /**
   * What the cache tiers hold of `tokens`, for deciding whether an admission should wait for a
   * running prefill of the same prefix (EngineCore.prefixPending).
   */
  cachedLength(tokens: readonly number[], salt: string): number {
    return this.kv?.cachedLength(tokens, salt) ?? 0;
  }

  /** After admission: load the KV the request brings (hand-off, suspended state, cached prefix). */
  async hydrate(req: AdmitBody, admitted: Admitted): Promise<void> {
    const r = req.resume;
    if (r?.ring) {
      const got = this.handoff.take(r.ring.ticket);
      if (got === undefined) {
        this.log(`hand-off ${r.ring.ticket} never arrived; prefilling the prompt here`);
        return;
      }
      let file: string;
      if (typeof got === 'string') file = got;
      else {
        file = join(STATE_DIR, `ifx-${process.pid}-${this.worker}-${r.ring.ticket}.kvstate`);
        await writeFile(file, got);
      }
      if (admitted.keep < r.stateTokens) await this.restore(admitted.seq, file, r.stateTokens);
      this.core.markHydrated(req.id, now());
      void unlink(file).catch(() => undefined);
      return;
    }
    if (r && r.stateFile !== '') {
      if (admitted.keep < r.stateTokens) await this.restore(admitted.seq, r.stateFile, r.stateTokens);
      void unlink(r.stateFile).catch(() => undefined);
      return;
    }
    // Another sequence of this context may hold more of the prompt than the cache tiers (a shared
    // system prompt another request is running with): copying its cells beats both a load and a prefill.
    const salt = saltOf(req);
    const live = this.core.copySource(req.tokens, admitted.seq, salt);
    if (live && live.length >= Math.max(admitted.keep, this.cachedLength(req.tokens, salt)) + MIN_COPY_GAIN_TOKENS) {
      await this.copyLive(admitted.seq, live);
      return;
    }
    const hit = this.kv?.find(req.tokens, admitted.keep, salt);
    if (hit) await this.restoreCached(admitted.seq, hit, req.tokens.length);
  }

  /**
   * Give a just-admitted request's sequence the first `length` cells of `source` (the same tokens
   * at the same positions, so the same KV a prefill would write). Locks a free source until the
   * next decode; a running one is never overwritten before it (only an admission does that).
   */
  private async copyLive(seq: number, { seq: source, length, free }: { seq: number; length: number; free: boolean }): Promise<void> {
    this.core.lock(seq);
    this.core.lock(source);
    try {
      const last = await this.batch.copySequence(seq, source);
      if (last + 1 < length) throw new Error(`the source sequence held ${last + 1} cells, not ${length}`);
      if (!this.batch.trimSequence(seq, length)) throw new Error('the model cannot drop part of a sequence');
      if (free) this.copiedFrom.push(source);
      else this.core.unlock(source);
      this.core.unlock(seq, length);
    } catch (err) {
      this.log(`could not copy a prefix from sequence ${source} (${String(err)}); prefilling`);
      this.core.unlock(source);
      this.batch.clearSequence(seq);
      this.core.forgetResident(seq);
      this.core.unlock(seq);
    }
  }

  /** Saves a suspended request's KV to tmpfs; returns the file, or '' (resume then prefills again). */
  async saveSuspended(s: SuspendedSlot<MessagePort>): Promise<string> {
    this.core.lock(s.seq);
    const file = join(STATE_DIR, `ifx-${process.pid}-${this.worker}-${randomUUID()}.kvstate`);
    try {
      await this.batch.saveSequence(s.seq, s.kvTokens, file);
      return file;
    } catch (err) {
      this.log(`could not save suspended state (${String(err)})`);
      return '';
    } finally {
      this.core.unlock(s.seq);
    }
  }

  /** Load a cached prefix into a just-admitted request's sequence; on failure it is prefilled. */
  private async restoreCached(seq: number, hit: PrefixHit, promptLen: number): Promise<void> {
    this.core.lock(seq);
    try {
      const got = await this.kv!.load(seq, hit);
      const keep = Math.min(got, hit.length, promptLen - 1);
      this.batch.trimSequence(seq, keep);
      this.core.unlock(seq, keep);
    } catch (err) {
      this.log(`could not load cached prefix (${String(err)}); prefilling`);
      this.batch.clearSequence(seq);
      this.core.forgetResident(seq);
      this.core.unlock(seq);
    }
  }

  /** Load a saved state (suspension or hand-off); on failure the sequence is cleared and prefilled again. */
  private async restore(seq: number, file: string, tokens: number): Promise<void> {
    this.core.lock(seq);
    try {
      this.batch.clearSequence(seq);
      const got = await this.batch.loadSequence(seq, file, this.contextSize);
      this.core.unlock(seq, Math.min(got.length, tokens));
    } catch (err) {
      this.log(`could not restore suspended state (${String(err)}); prefilling again`);
      this.batch.clearSequence(seq);
      this.core.forgetResident(seq);
      this.core.unlock(seq);
    }
  }
}
