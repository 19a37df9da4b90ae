/**
 * Builders for scheduler-core tests: a core with engines already up, request batches, and a small
 * simulation that plays the engines (one generated token per running request per step, suspension
 * acknowledged at once) so long runs need no ports or timers.
 */
import { SchedulerCore, type Admission, type EngineKey, type FairnessConfig, type Placement, type Suspension } from '../../src/actors/scheduler/core.js';
import type { RequestId } from '../../src/actors/protocol.js';

export const MODEL = 'm';

export interface Req {
  id: RequestId;
  tenant: string;
  priority: number;
  promptTokens: number;
}

/** A core with `engines[i]` sequences on worker i of model `m`. Refs are the request ids. */
export function makeScheduler(o: { maxQueue?: number; engines?: number[]; fairness?: Partial<FairnessConfig> } = {}): SchedulerCore<string> {
  const core = new SchedulerCore<string>(o.maxQueue ?? 100, o.fairness);
  (o.engines ?? [1]).forEach((capacity, worker) => core.engineUp({ model: MODEL, worker }, capacity));
  return core;
}

let serial = 0;
/** `n` requests named `${prefix}${i}` (prefix defaults to the tenant). */
export function makeRequests(n: number, o: { tenant?: string; priority?: number; promptTokens?: number; prefix?: string } = {}): Req[] {
  const tenant = o.tenant ?? 't';
  const prefix = o.prefix ?? tenant;
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}` as RequestId, tenant, priority: o.priority ?? 0, promptTokens: o.promptTokens ?? 0 }));
}

/** Unique ids for long runs. */
export function freshRequest(tenant: string, o: { priority?: number; promptTokens?: number } = {}): Req {
  return { id: `${tenant}#${serial++}` as RequestId, tenant, priority: o.priority ?? 0, promptTokens: o.promptTokens ?? 0 };
}

export function admit(core: SchedulerCore<string>, r: Req): Admission<string> {
  return core.admit(r.id, MODEL, r.priority, r.id, { tenant: r.tenant, promptTokens: r.promptTokens });
}

export const id = (s: string): RequestId => s as RequestId;
export const eng = (worker: number): EngineKey => ({ model: MODEL, worker });
export const place = (worker: number, rid: string, from?: number): Placement<string> =>
  from === undefined ? { engine: eng(worker), id: id(rid), ref: rid } : { engine: eng(worker), id: id(rid), ref: rid, resume: { from: eng(from) } };
export const suspend = (worker: number, rid: string, reason: 'preempt' | 'yield'): Suspension => ({ engine: eng(worker), id: id(rid), reason });
export const queued = (s: Suspension[] = [], evict: string[] = []) => ({ kind: 'queued' as const, suspend: s, evict: evict.map((e) => ({ id: id(e), ref: e })) });

/**
 * Plays the engines: every step each running request generates one token (reported through
 * `progress`), finishes after its length, and acknowledges a suspension right away.
 */
export class Sim {
  readonly running = new Map<string, { engine: EngineKey; left: number }>();
  readonly left = new Map<string, number>();
  readonly tenantOf = new Map<string, string>();
  /** Prompt + generated tokens processed per tenant (what the virtual counters charge). */
  readonly processed = new Map<string, number>();
  readonly events: string[] = [];
  rejected = 0;
  evicted = 0;

  constructor(readonly core: SchedulerCore<string>, private readonly prompts = new Map<string, number>()) {}

  admit(r: Req, generate: number): void {
    this.left.set(r.id, generate);
    this.tenantOf.set(r.id, r.tenant);
    this.prompts.set(r.id, r.promptTokens);
    const a = admit(this.core, r);
    if (a.kind === 'place') this.placed([{ engine: a.engine, id: a.id, ref: a.ref }]);
    else if (a.kind === 'reject') this.rejected++;
    else {
      this.evicted += a.evict.length;
      this.suspend(a.suspend);
    }
  }

  step(): void {
    for (const [rid, run] of [...this.running]) {
      if (!this.running.has(rid)) continue;
      run.left--;
      this.add(rid, 1);
      const s = this.core.progress(id(rid), 1);
      if (run.left === 0) {
        this.running.delete(rid);
        this.events.push(`done ${rid}`);
        this.placed(this.core.released(id(rid), run.engine));
      } else {
        this.suspend(s);
      }
    }
  }

  private placed(ps: Placement<string>[]): void {
    for (const p of ps) {
      if (!p.resume) this.add(p.id, this.prompts.get(p.id) ?? 0);
      this.events.push(`${p.resume ? 'resume' : 'place'} ${p.id}@${p.engine.worker}`);
      this.running.set(p.id, { engine: p.engine, left: this.left.get(p.id)! });
    }
  }

  private suspend(ss: Suspension[]): void {
    for (const s of ss) {
      const run = this.running.get(s.id)!;
      this.running.delete(s.id);
      this.left.set(s.id, run.left);
      this.events.push(`${s.reason} ${s.id}`);
      this.placed(this.core.suspended(s.id, s.id).placements);
    }
  }

  private add(rid: string, n: number): void {
    const t = this.tenantOf.get(rid)!;
    this.processed.set(t, (this.processed.get(t) ?? 0) + n);
  }
}
