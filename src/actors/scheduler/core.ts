/**
 * The scheduler's pure core: admission, bounded per-model queues ordered by priority then
 * arrival, and placement on the least-loaded engine worker of the request's model.
 * No ports or clocks: the shell moves frames, this decides.
 */
import type { RequestId } from '../protocol.js';

export interface EngineKey {
  model: string;
  worker: number;
}

interface EngineState extends EngineKey {
  capacity: number;
  /** Requests placed and not yet released. */
  inflight: Set<RequestId>;
  /** In-flight requests this core did not place (adopted after a scheduler restart). */
  adopted: number;
}

interface Queued<R> {
  id: RequestId;
  model: string;
  priority: number;
  order: number;
  ref: R;
}

export type Admission<R> =
  | { kind: 'place'; engine: EngineKey; id: RequestId; ref: R }
  | { kind: 'queued' }
  | { kind: 'reject'; reason: 'queue_full' };

export interface Placement<R> {
  engine: EngineKey;
  id: RequestId;
  ref: R;
}

export class SchedulerCore<R> {
  private readonly engines = new Map<string, EngineState>();
  private readonly queues = new Map<string, Queued<R>[]>();
  private readonly placedOn = new Map<RequestId, EngineState>();
  private order = 0;

  constructor(private readonly maxQueue: number) {}

  engineUp(key: EngineKey, capacity: number, alreadyActive = 0): Placement<R>[] {
    this.engines.set(keyOf(key), { ...key, capacity, inflight: new Set(), adopted: alreadyActive });
    return this.drain(key.model);
  }

  /** The engine is gone: requests on it are failed by their closed ports, not here. */
  engineDown(key: EngineKey): void {
    const engine = this.engines.get(keyOf(key));
    if (!engine) return;
    for (const id of engine.inflight) this.placedOn.delete(id);
    this.engines.delete(keyOf(key));
  }

  admit(id: RequestId, model: string, priority: number, ref: R): Admission<R> {
    const engine = this.pick(model);
    const queue = this.queueOf(model);
    if (engine && queue.length === 0) {
      this.place(engine, id);
      return { kind: 'place', engine: { model: engine.model, worker: engine.worker }, id, ref };
    }
    if (queue.length >= this.maxQueue) return { kind: 'reject', reason: 'queue_full' };
    const item: Queued<R> = { id, model, priority, order: this.order++, ref };
    // Insert after every item of higher or equal priority: priority first, then arrival.
    let at = queue.length;
    while (at > 0 && queue[at - 1]!.priority < priority) at--;
    queue.splice(at, 0, item);
    return { kind: 'queued' };
  }

  /** A request left its engine; place what the freed sequence can take. */
  released(id: RequestId, from?: EngineKey): Placement<R>[] {
    const engine = this.placedOn.get(id);
    if (engine) {
      engine.inflight.delete(id);
      this.placedOn.delete(id);
      return this.drain(engine.model);
    }
    const adopter = from ? this.engines.get(keyOf(from)) : undefined;
    if (adopter && adopter.adopted > 0) {
      adopter.adopted--;
      return this.drain(adopter.model);
    }
    return [];
  }

  /** Remove a still-queued request; returns its ref, or undefined if it was already placed. */
  cancel(id: RequestId): R | undefined {
    for (const queue of this.queues.values()) {
      const at = queue.findIndex((q) => q.id === id);
      if (at !== -1) return queue.splice(at, 1)[0]!.ref;
    }
    return undefined;
  }

  depth(model: string): { queued: number; active: number } {
    let active = 0;
    for (const e of this.engines.values()) if (e.model === model) active += e.inflight.size + e.adopted;
    return { queued: this.queueOf(model).length, active };
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
    while (queue.length > 0) {
      const engine = this.pick(model);
      if (!engine) break;
      const next = queue.shift()!;
      this.place(engine, next.id);
      out.push({ engine: { model: engine.model, worker: engine.worker }, id: next.id, ref: next.ref });
    }
    return out;
  }

  private place(engine: EngineState, id: RequestId): void {
    engine.inflight.add(id);
    this.placedOn.set(id, engine);
  }

  /** Least-loaded engine of the model with a free sequence; ties go to the lowest worker. */
  private pick(model: string): EngineState | undefined {
    let best: EngineState | undefined;
    for (const e of this.engines.values()) {
      if (e.model !== model) continue;
      const load = e.inflight.size + e.adopted;
      if (load >= e.capacity) continue;
      if (!best || load < best.inflight.size + best.adopted || (load === best.inflight.size + best.adopted && e.worker < best.worker)) best = e;
    }
    return best;
  }

  private queueOf(model: string): Queued<R>[] {
    let q = this.queues.get(model);
    if (!q) this.queues.set(model, (q = []));
    return q;
  }
}

function keyOf(k: EngineKey): string {
  return `${k.model}\u0000${k.worker}`;
}
