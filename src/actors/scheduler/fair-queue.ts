/**
 * One model's wait queue: priority classes, and inside a class token-aware fair sharing between
 * tenants through virtual token counters (vLLM/SGLang "virtual time", the VTC of Sheng et al.,
 * "Fairness in Serving Large Language Models", OSDI '24).
 *
 * - The next request is the head of the highest priority class; inside the class, the tenant with
 *   the lowest virtual counter wins (ties: earliest arrival), FIFO within a tenant.
 * - A tenant is charged for the tokens it costs (prompt at placement, generated as reported), so
 *   one tenant's flood only ever buys its own share.
 * - A tenant that becomes active (first queued or running request) is lifted to the floor: the
 *   lowest counter among the other active tenants, or the last such value when none is active.
 *   An idle tenant cannot bank credit, and a returning heavy tenant is not punished for the past
 *   beyond what it consumed while others were active.
 *
 * Pure data structure: no ports, no clocks. Sizes are small (bounded queue, a handful of priority
 * classes and tenants), so scans are linear and plain.
 */
import type { RequestId } from '../protocol.js';

export interface QueueEntry {
  id: RequestId;
  tenant: string;
  priority: number;
  /** Arrival order; resumable entries keep theirs. */
  order: number;
  /** Suspended after it ran: counts against the bound, never evicted or rejected. */
  resumable: boolean;
}

export class FairQueue<E extends QueueEntry> {
  /** priority -> tenant -> FIFO sorted by `order`. */
  private readonly classes = new Map<number, Map<string, E[]>>();
  private readonly byId = new Map<RequestId, E>();
  private readonly counters = new Map<string, number>();
  /** Queued plus running requests per tenant; a tenant is active while this is > 0. */
  private readonly active = new Map<string, number>();
  private floor = 0;

  get size(): number {
    return this.byId.size;
  }

  has(id: RequestId): boolean {
    return this.byId.has(id);
  }

  /** Insert by arrival order within the tenant's FIFO (resumable entries may go ahead). */
  push(e: E): void {
    let tenants = this.classes.get(e.priority);
    if (!tenants) this.classes.set(e.priority, (tenants = new Map()));
    let fifo = tenants.get(e.tenant);
    if (!fifo) tenants.set(e.tenant, (fifo = []));
    let at = fifo.length;
    while (at > 0 && fifo[at - 1]!.order > e.order) at--;
    fifo.splice(at, 0, e);
    this.byId.set(e.id, e);
  }

  remove(id: RequestId): E | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    const tenants = this.classes.get(e.priority)!;
    const fifo = tenants.get(e.tenant)!;
    fifo.splice(fifo.indexOf(e), 1);
    if (fifo.length === 0) tenants.delete(e.tenant);
    if (tenants.size === 0) this.classes.delete(e.priority);
    this.byId.delete(id);
    return e;
  }

  /** The request the next free sequence should take. */
  peek(): E | undefined {
    let top: Map<string, E[]> | undefined;
    let topPriority = -Infinity;
    for (const [p, tenants] of this.classes) if (p > topPriority) [topPriority, top] = [p, tenants];
    if (!top) return undefined;
    let best: E | undefined;
    for (const [tenant, fifo] of top) {
      const head = fifo[0]!;
      if (!best) { best = head; continue; }
      const a = this.virtual(tenant);
      const b = this.virtual(best.tenant);
      if (a < b || (a === b && head.order < best.order)) best = head;
    }
    return best;
  }

  shift(): E | undefined {
    const e = this.peek();
    if (e) this.remove(e.id);
    return e;
  }

  /** How many queued requests have priority >= `p`. */
  waitingAtLeast(p: number): number {
    let n = 0;
    for (const [q, tenants] of this.classes) if (q >= p) for (const fifo of tenants.values()) n += fifo.length;
    return n;
  }

  /** Priorities of queued requests at or above `p`, highest first, one entry per request. */
  prioritiesAtLeast(p: number): number[] {
    const out: number[] = [];
    for (const [q, tenants] of this.classes) {
      if (q < p) continue;
      for (const fifo of tenants.values()) for (let i = 0; i < fifo.length; i++) out.push(q);
    }
    return out.sort((a, b) => b - a);
  }

  /**
   * Longest-queue drop for a full queue: the newest fresh entry, of priority <= `priority`, of the
   * tenant holding the most such entries, if that tenant holds at least two more than `tenant`
   * (so the swap never reverses who holds more). Undefined means: reject the arrival instead.
   */
  evictionVictim(tenant: string, priority: number): E | undefined {
    const held = new Map<string, E[]>();
    for (const [q, tenants] of this.classes) {
      if (q > priority) continue;
      for (const [t, fifo] of tenants) {
        let list = held.get(t);
        if (!list) held.set(t, (list = []));
        for (const e of fifo) if (!e.resumable) list.push(e);
      }
    }
    const mine = held.get(tenant)?.length ?? 0;
    let longest: E[] | undefined;
    for (const [t, list] of held) if (t !== tenant && (!longest || list.length > longest.length)) longest = list;
    if (!longest || longest.length < mine + 2) return undefined;
    // Newest = highest arrival order (orders are unique).
    return longest.reduce((a, b) => (b.order > a.order ? b : a));
  }

  /** A request of `tenant` was admitted (queued or placed). Lifts a newly active tenant. */
  enter(tenant: string): void {
    const n = this.active.get(tenant) ?? 0;
    if (n === 0) {
      this.raiseFloor();
      this.counters.set(tenant, Math.max(this.counters.get(tenant) ?? 0, this.floor));
    }
    this.active.set(tenant, n + 1);
  }

  /** A request of `tenant` left for good (finished, cancelled, evicted, lost with its engine). */
  leave(tenant: string): void {
    const n = this.active.get(tenant) ?? 0;
    if (n <= 1) {
      this.raiseFloor();
      this.active.delete(tenant);
      // At or below the floor it would be lifted to the floor anyway: forget it.
      if ((this.counters.get(tenant) ?? 0) <= this.floor) this.counters.delete(tenant);
    } else {
      this.active.set(tenant, n - 1);
    }
  }

  charge(tenant: string, tokens: number): void {
    if (tokens <= 0) return;
    this.counters.set(tenant, this.virtual(tenant) + tokens);
  }

  virtual(tenant: string): number {
    return this.counters.get(tenant) ?? this.floor;
  }

  private raiseFloor(): void {
    let min = Infinity;
    for (const t of this.active.keys()) min = Math.min(min, this.virtual(t));
    if (min !== Infinity && min > this.floor) this.floor = min;
  }
}
