/**
 * The scheduler's pure core: admission into bounded per-model queues, placement on the
 * least-loaded engine worker of the request's model, and fairness (DESIGN §3):
 *
 * - Priority: higher first. Inside a priority class, tenants share by virtual token counters
 *   (see fair-queue.ts); FIFO within a tenant.
 * - Preemption (`enablePreemption`): a queued request at or above `highPriorityThreshold` with no
 *   free sequence for its model suspends a running request of lower priority (lowest priority,
 *   then most tokens since its placement, then placed earliest). The suspended request goes back
 *   to the queue as resumable with its original arrival order, and is resumed later, possibly on
 *   another worker of the same model.
 * - Timeslices (`maxTimesliceTokens` > 0): a request that generated more than that since its last
 *   placement while a request of equal or higher priority waits yields through the same path.
 *
 * - Long-prompt isolation (`isolatePromptTokens` > 0, unified pools only): a fresh request with at
 *   least that many prompt tokens still to prefill is placed, and the other requests running on
 *   its worker are moved (suspended, then resumed) to workers of the model with free sequences,
 *   which new placements also prefer until its first token. On a CPU a prompt chunk makes every
 *   co-scheduled stream wait for it (a 256-token chunk is ~1 s on the bench model); moving the
 *   streams costs each of them about one step.
 *
 * - Placement (`placement`): `spread` puts a request on the least-loaded worker with a free
 *   sequence; `pack` on the busiest one, so on a small machine one batch takes every core through
 *   the core budget (a batch of 8 on 2 threads decodes in about 33 ms, two batches of 4 on one
 *   thread each in about 45 ms) while the other worker stays free, and a long prompt (at least
 *   `isolatePromptTokens`) goes to the least loaded, where it does not stall the packed batch.
 *   Either way a worker holding or running the request's prefix, or running its adapter, comes first.
 *
 * Suspension is two-phase: a `Suspension` decision marks the request suspending (its sequence
 * stays occupied); the engine later reports `suspended` (or `released`, if it finished first), and
 * only then is the sequence reused. No ports, no clocks: every decision follows from the events
 * the shell reports, in order, so tests drive it step by step.
 */
import type { RequestId } from '../protocol.js';
import { FairQueue, type QueueEntry } from './fair-queue.js';
import { BLOCK, sharedBlocks } from '../../runtime/prefix/block-hash.js';

export interface EngineKey {
  model: string;
  worker: number;
}

export interface FairnessConfig {
  /** Suspend lower-priority running requests for waiting high-priority ones. Defaults to `false`. */
  enablePreemption: boolean;
  /** Requests with priority >= this are "high" and may preempt. Defaults to `5`. */
  highPriorityThreshold: number;
  /** Generated tokens per placement before yielding to an equal-or-higher waiter; 0 = off. Defaults to `0`. */
  maxTimesliceTokens: number;
}

export const DEFAULT_FAIRNESS: Readonly<FairnessConfig> = { enablePreemption: false, highPriorityThreshold: 5, maxTimesliceTokens: 0 };

/** The tenant of requests admitted without one. */
export const DEFAULT_TENANT = 'default';

export interface AdmitOptions {
  /** Fair-share account. Defaults to `DEFAULT_TENANT`. */
  tenant?: string;
  /** Charged to the tenant when the request is first placed. Defaults to `0`. */
  promptTokens?: number;
  /** Prompt fingerprint (runtime/prefix/block-hash.ts) for placing it where its prefix is cached. */
  prefix?: readonly number[];
  /** Whether a long prompt may move other requests off its worker (unified pools). Defaults to `false`. */
  mayIsolate?: boolean;
  /**
   * Key of the request's LoRA adapter ('' = base). An engine runs one adapter at a time
   * (engine/adapter-gate.ts), so placement prefers engines running none of another. Defaults to `''`.
   */
  adapter?: string;
}

export type SuspendReason = 'preempt' | 'yield' | 'migrate';

/** Tell `engine` to suspend request `id` (save its sequence state to the host page pool). */
export interface Suspension {
  engine: EngineKey;
  id: RequestId;
  reason: SuspendReason;
}

/** Run request `id` on `engine`; with `resume`, restore the state it was suspended with on `from`. */
export interface Placement<R> {
  engine: EngineKey;
  id: RequestId;
  ref: R;
  resume?: { from: EngineKey };
}

export type Admission<R> =
  | { kind: 'place'; engine: EngineKey; id: RequestId; ref: R }
  /** `evict`: queued requests pushed out to make room (answer them queue_full). */
  | { kind: 'queued'; suspend: Suspension[]; evict: { id: RequestId; ref: R }[] }
  | { kind: 'reject'; reason: 'queue_full' };

/** Outcome of `suspended`: `drop` is set when the request is not requeued (cancelled or unknown). */
export interface Suspended<R> {
  placements: Placement<R>[];
  drop: R | undefined;
}

/** Cumulative since construction; generated tokens only. */
export interface FairnessCounters {
  preemptions: number;
  yields: number;
  /** Requests moved off a worker for a long prompt (long-prompt isolation). */
  migrations: number;
  resumes: number;
  tokensByPriority: Map<number, number>;
  tokensByTenant: Map<string, number>;
}

interface EngineState extends EngineKey {
  capacity: number;
  /** Requests placed and not yet released or suspended. */
  inflight: Set<RequestId>;
  /** In-flight requests this core did not place (adopted after a scheduler restart). */
  adopted: number;
  /** Fingerprints of the prefixes the engine's sequences hold (most recent first, at most capacity). */
  resident: number[][];
  /** The long prompt this engine is prefilling alone (long-prompt isolation), until its first token. */
  isolating: RequestId | null;
}

interface Waiting<R> extends QueueEntry {
  model: string;
  promptTokens: number;
  prefix: readonly number[];
  adapter: string;
  ref: R;
  /** Where it was suspended, for resumable entries. */
  from: EngineKey | null;
  mayIsolate: boolean;
}

interface Running {
  id: RequestId;
  tenant: string;
  priority: number;
  order: number;
  promptTokens: number;
  prefix: readonly number[];
  adapter: string;
  engine: EngineState;
  /** Placement sequence number: tie-break for victims (placed earliest goes first). */
  placed: number;
  /** Tokens generated since the last placement. */
  slice: number;
  suspending: SuspendReason | null;
  cancelled: boolean;
}

export class SchedulerCore<R> {
  private readonly engines = new Map<string, EngineState>();
  private readonly queues = new Map<string, FairQueue<Waiting<R>>>();
  private readonly running = new Map<RequestId, Running>();
  private config: FairnessConfig;
  private order = 0;
  private placements = 0;
  private readonly stats: FairnessCounters = { preemptions: 0, yields: 0, migrations: 0, resumes: 0, tokensByPriority: new Map(), tokensByTenant: new Map() };
  /** Decided while placing (long-prompt isolation); see `takeSuspensions`. */
  private pendingSuspensions: Suspension[] = [];

  /**
   * @param isolatePromptTokens prompt tokens still to prefill from which a request gets its
   *   worker to itself (see the header); 0 turns isolation off.
   * @param placement `spread` (least loaded) or `pack` (busiest with room; see the header).
   */
  constructor(
    private readonly maxQueue: number,
    fairness: Partial<FairnessConfig> = {},
    private readonly isolatePromptTokens = 0,
    private readonly placement: 'pack' | 'spread' = 'spread',
  ) {
    this.config = checked({ ...DEFAULT_FAIRNESS, ...fairness });
  }

  /**
   * Suspensions decided while placing requests (long-prompt isolation), once. The shell sends them
   * before the placements that caused them, so the engine moves its streams out before it starts
   * the long prompt's first chunk.
   */
  takeSuspensions(): Suspension[] {
    const out = this.pendingSuspensions;
    this.pendingSuspensions = [];
    return out;
  }

  engineUp(key: EngineKey, capacity: number, alreadyActive = 0): Placement<R>[] {
    this.engines.set(keyOf(key), { ...key, capacity, inflight: new Set(), adopted: alreadyActive, resident: [], isolating: null });
    return this.drain(key.model);
  }

  /** The engine is gone: requests on it are failed by their closed ports, not here. */
  engineDown(key: EngineKey): void {
    const engine = this.engines.get(keyOf(key));
    if (!engine) return;
    for (const id of engine.inflight) this.finish(this.running.get(id)!);
    this.engines.delete(keyOf(key));
  }

  admit(id: RequestId, model: string, priority: number, ref: R, opts: AdmitOptions = {}): Admission<R> {
    const tenant = opts.tenant ?? DEFAULT_TENANT;
    const entry: Waiting<R> = {
      id, model, tenant, priority, order: this.order++, resumable: false, promptTokens: opts.promptTokens ?? 0, prefix: opts.prefix ?? [], adapter: opts.adapter ?? '', ref, from: null,
      mayIsolate: opts.mayIsolate ?? false,
    };
    const queue = this.queueOf(model);
    const engine = this.pick(model, entry.prefix, entry.adapter, this.isLong(entry));
    if (engine && queue.size === 0) {
      queue.enter(tenant);
      const p = this.start(engine, entry);
      return { kind: 'place', engine: p.engine, id, ref };
    }
    const evict: { id: RequestId; ref: R }[] = [];
    if (queue.size >= this.maxQueue) {
      // Resumable entries may hold the queue over its bound; then nothing fresh gets in.
      const victim = queue.size === this.maxQueue ? queue.evictionVictim(tenant, priority) : undefined;
      if (!victim) return { kind: 'reject', reason: 'queue_full' };
      queue.remove(victim.id);
      queue.leave(victim.tenant);
      evict.push({ id: victim.id, ref: victim.ref });
    }
    queue.enter(tenant);
    queue.push(entry);
    return { kind: 'queued', suspend: this.preempt(model), evict };
  }

  /** Tokens generated by a running request since its last report; may ask it to yield. */
  progress(id: RequestId, generated: number): Suspension[] {
    const r = this.running.get(id);
    if (!r) return [];
    // Its first token: the long prompt is prefilled, its worker takes new requests again.
    if (generated > 0 && r.engine.isolating === id) r.engine.isolating = null;
    this.account(r, generated);
    const y = this.yieldIfDue(r);
    return y ? [y] : [];
  }

  /** A request left its engine (finished, failed, cancelled); place what the freed sequence can take. */
  released(id: RequestId, from?: EngineKey, generated = 0): Placement<R>[] {
    const r = this.running.get(id);
    if (r) {
      this.account(r, generated);
      this.finish(r);
      return this.drain(r.engine.model);
    }
    const adopter = from ? this.engines.get(keyOf(from)) : undefined;
    if (adopter && adopter.adopted > 0) {
      adopter.adopted--;
      return this.drain(adopter.model);
    }
    return [];
  }

  /**
   * The engine saved request `id`'s state and freed its sequence; `ref` is what the shell holds for
   * it now (body and port handed back). It is requeued as resumable unless it was cancelled meanwhile.
   */
  suspended(id: RequestId, ref: R, generated = 0): Suspended<R> {
    const r = this.running.get(id);
    if (!r) return { placements: [], drop: ref };
    this.account(r, generated);
    const model = r.engine.model;
    if (r.cancelled) {
      this.finish(r);
      return { placements: this.drain(model), drop: ref };
    }
    r.engine.inflight.delete(id);
    this.running.delete(id);
    if (r.suspending === 'yield') this.stats.yields++;
    else if (r.suspending === 'preempt') this.stats.preemptions++;
    else if (r.suspending === 'migrate') this.stats.migrations++;
    // A preempted request keeps its arrival order; a yielded one goes to the back of its tenant's
    // line, or it would take its own sequence straight back from a same-tenant waiter.
    const order = r.suspending === 'yield' ? this.order++ : r.order;
    const from = { model, worker: r.engine.worker };
    this.queueOf(model).push({ id, model, tenant: r.tenant, priority: r.priority, order, resumable: true, promptTokens: r.promptTokens, prefix: r.prefix, adapter: r.adapter, ref, from, mayIsolate: false });
    return { placements: this.drain(model), drop: undefined };
  }

  /**
   * Remove a still-queued request; returns its ref, or undefined if it is running (the engine
   * cancels it). A request being suspended is dropped when `suspended` reports it.
   */
  cancel(id: RequestId): R | undefined {
    for (const queue of this.queues.values()) {
      const e = queue.remove(id);
      if (e) {
        queue.leave(e.tenant);
        return e.ref;
      }
    }
    const r = this.running.get(id);
    if (r?.suspending) r.cancelled = true;
    return undefined;
  }

  /** Live update; returns the suspensions the new settings call for right away. */
  setFairness(patch: Partial<FairnessConfig>): Suspension[] {
    this.config = checked({ ...this.config, ...patch });
    const out: Suspension[] = [];
    for (const model of this.models()) {
      out.push(...this.preempt(model));
      const due = [...this.running.values()].filter((r) => r.engine.model === model).sort((a, b) => b.slice - a.slice || a.placed - b.placed);
      for (const r of due) {
        const y = this.yieldIfDue(r);
        if (y) out.push(y);
      }
    }
    return out;
  }

  fairness(): FairnessConfig {
    return { ...this.config };
  }

  counters(): FairnessCounters {
    const s = this.stats;
    return { preemptions: s.preemptions, yields: s.yields, migrations: s.migrations, resumes: s.resumes, tokensByPriority: new Map(s.tokensByPriority), tokensByTenant: new Map(s.tokensByTenant) };
  }

  depth(model: string): { queued: number; active: number } {
    let active = 0;
    for (const e of this.engines.values()) if (e.model === model) active += e.inflight.size + e.adopted;
    return { queued: this.queueOf(model).size, active };
  }

  models(): string[] {
    const names = new Set<string>();
    for (const e of this.engines.values()) names.add(e.model);
    for (const m of this.queues.keys()) names.add(m);
    return [...names];
  }

  private drain(model: string): Placement<R>[] {
    const out: Placement<R>[] = [];
    const queue = this.queueOf(model);
    while (queue.size > 0) {
      if (!this.pick(model)) break;
      const next = queue.shift()!;
      out.push(this.start(this.pick(model, next.prefix, next.adapter, this.isLong(next))!, next));
    }
    return out;
  }

  private start(engine: EngineState, w: Waiting<R>): Placement<R> {
    engine.inflight.add(w.id);
    this.running.set(w.id, {
      id: w.id, tenant: w.tenant, priority: w.priority, order: w.order, promptTokens: w.promptTokens, prefix: w.prefix, adapter: w.adapter,
      engine, placed: this.placements++, slice: 0, suspending: null, cancelled: false,
    });
    const key = { model: engine.model, worker: engine.worker };
    if (!w.from) {
      this.queueOf(w.model).charge(w.tenant, w.promptTokens);
      if (w.mayIsolate) this.isolate(engine, w);
      return { engine: key, id: w.id, ref: w.ref };
    }
    this.stats.resumes++;
    return { engine: key, id: w.id, ref: w.ref, resume: { from: w.from } };
  }

  /**
   * Long-prompt isolation (see the header): if `w` has enough prompt left to prefill on `engine`,
   * move the engine's other running requests to free sequences on the model's other engines.
   */
  private isolate(engine: EngineState, w: Waiting<R>): void {
    if (this.isolatePromptTokens <= 0) return;
    let cached = 0;
    for (const r of engine.resident) cached = Math.max(cached, sharedBlocks(w.prefix, r) * BLOCK);
    if (w.promptTokens - cached < this.isolatePromptTokens) return;
    const others = [...this.engines.values()].filter((e) => e !== engine && e.model === engine.model);
    if (others.length === 0) return;
    // New placements avoid this engine from now on; running requests move as far as room allows.
    engine.isolating = w.id;
    let room = 0;
    for (const e of others) if (e.isolating === null) room += Math.max(0, e.capacity - e.inflight.size - e.adopted);
    for (const id of engine.inflight) {
      if (room === 0) break;
      const r = this.running.get(id)!;
      if (id === w.id || r.suspending) continue;
      r.suspending = 'migrate';
      room--;
      this.pendingSuspensions.push({ engine: { model: engine.model, worker: engine.worker }, id, reason: 'migrate' });
    }
  }

  /** The request is gone for good. */
  private finish(r: Running): void {
    if (r.engine.isolating === r.id) r.engine.isolating = null;
    r.engine.inflight.delete(r.id);
    this.running.delete(r.id);
    this.queueOf(r.engine.model).leave(r.tenant);
  }

  private account(r: Running, generated: number): void {
    if (generated <= 0) return;
    r.slice += generated;
    this.queueOf(r.engine.model).charge(r.tenant, generated);
    bump(this.stats.tokensByPriority, r.priority, generated);
    bump(this.stats.tokensByTenant, r.tenant, generated);
  }

  /**
   * Suspensions for waiting high-priority requests. Every sequence already being suspended or free
   * goes to the head of the queue, which is the highest-priority waiter, so those cover waiters
   * first; each uncovered one takes a victim of strictly lower priority.
   */
  private preempt(model: string): Suspension[] {
    if (!this.config.enablePreemption) return [];
    let covered = this.spare(model);
    const out: Suspension[] = [];
    for (const p of this.queueOf(model).prioritiesAtLeast(this.config.highPriorityThreshold)) {
      if (covered > 0) { covered--; continue; }
      const victim = this.victim(model, p);
      if (!victim) break;
      victim.suspending = 'preempt';
      out.push({ engine: { model, worker: victim.engine.worker }, id: victim.id, reason: 'preempt' });
    }
    return out;
  }

  private yieldIfDue(r: Running): Suspension | undefined {
    const max = this.config.maxTimesliceTokens;
    if (max === 0 || r.suspending || r.slice <= max) return undefined;
    const model = r.engine.model;
    if (this.queueOf(model).waitingAtLeast(r.priority) <= this.spare(model)) return undefined;
    r.suspending = 'yield';
    return { engine: { model, worker: r.engine.worker }, id: r.id, reason: 'yield' };
  }

  /** Lowest priority below `p`, then most tokens since placement, then placed earliest. */
  private victim(model: string, p: number): Running | undefined {
    let best: Running | undefined;
    for (const r of this.running.values()) {
      if (r.engine.model !== model || r.suspending || r.priority >= p) continue;
      if (!best || r.priority < best.priority || (r.priority === best.priority && (r.slice > best.slice || (r.slice === best.slice && r.placed < best.placed)))) best = r;
    }
    return best;
  }

  /** Sequences of the model that are free or already being suspended. */
  private spare(model: string): number {
    let n = 0;
    for (const e of this.engines.values()) if (e.model === model) n += Math.max(0, e.capacity - e.inflight.size - e.adopted);
    // A migrating request frees its sequence but takes another one: no net room.
    for (const r of this.running.values()) if (r.engine.model === model && r.suspending && r.suspending !== 'migrate') n++;
    return n;
  }

  /** An engine reports the fingerprints of the prefixes its sequences now hold. */
  residentPrefixes(key: EngineKey, prefixes: number[][]): void {
    const e = this.engines.get(keyOf(key));
    if (e) e.resident = prefixes;
  }

  /** A fresh prompt long enough to be isolated: packing sends it to the least-loaded worker. */
  private isLong(w: Waiting<R>): boolean {
    return w.mayIsolate && !w.from && this.isolatePromptTokens > 0 && w.promptTokens >= this.isolatePromptTokens;
  }

  /**
   * Engine of the model with a free sequence: one running no other adapter, then one not
   * prefilling a long prompt alone, then the one holding or running the longest prefix of the
   * request (its KV is reused or copied instead of prefilled), then the least loaded (`spread`,
   * or a long prompt) or the most loaded (`pack`); ties go to the lowest worker.
   */
  private pick(model: string, prefix: readonly number[] = [], adapter = '', long = false): EngineState | undefined {
    const pack = this.placement === 'pack' && !long;
    let best: EngineState | undefined;
    let bestRank: number[] = [];
    for (const e of this.engines.values()) {
      if (e.model !== model) continue;
      const load = e.inflight.size + e.adopted;
      if (load >= e.capacity) continue;
      // Running another adapter: the request would wait there for those to finish (a swap).
      let other = false;
      let shared = 0;
      for (const id of e.inflight) {
        const r = this.running.get(id);
        if (r?.adapter !== adapter) other = true;
        // A request running there with the same prefix: the engine copies its KV instead of
        // prefilling it again (engine/kv-moves.ts), once the prefill is past the shared part.
        else if (prefix.length > 0) shared = Math.max(shared, sharedBlocks(prefix, r.prefix));
      }
      if (prefix.length > 0) for (const r of e.resident) shared = Math.max(shared, sharedBlocks(prefix, r));
      // Smaller is better, compared in this order (see above).
      const rank = [other ? 1 : 0, e.isolating !== null ? 1 : 0, -shared, pack ? -load : load, e.worker];
      if (!best || precedes(rank, bestRank)) {
        best = e;
        bestRank = rank;
      }
    }
    return best;
  }

  private queueOf(model: string): FairQueue<Waiting<R>> {
    let q = this.queues.get(model);
    if (!q) this.queues.set(model, (q = new FairQueue()));
    return q;
  }
}

function checked(c: FairnessConfig): FairnessConfig {
  if (!Number.isInteger(c.maxTimesliceTokens) || c.maxTimesliceTokens < 0) throw new RangeError(`maxTimesliceTokens must be a non-negative integer, got ${c.maxTimesliceTokens}`);
  if (!Number.isFinite(c.highPriorityThreshold)) throw new RangeError(`highPriorityThreshold must be a number, got ${c.highPriorityThreshold}`);
  return c;
}

function bump<K>(m: Map<K, number>, k: K, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

function keyOf(k: EngineKey): string {
  return `${k.model}\u0000${k.worker}`;
}

/** `a` sorts before `b` (lexicographic over equal-length numeric ranks). */
function precedes(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}
