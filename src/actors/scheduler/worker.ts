/**
 * Scheduler actor shell. Holds the ports of queued requests, forwards admitted ones to their
 * engine's link port (the request port moves along, so tokens later flow engine -> main
 * directly), and reports queue depth to the main thread.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { InferFluxError } from '../../errors.js';
import {
  PROTOCOL_VERSION,
  T,
  postFrame,
  unpack,
  type AdmitBody,
  type Envelope,
  type FromEngine,
  type RequestId,
  type ToScheduler,
  type WorkerHello,
} from '../protocol.js';
import { exposeRpc } from '../rpc.js';
import { unlink } from 'node:fs/promises';
import { SchedulerCore, type EngineKey, type FairnessConfig, type Placement, type Suspension } from './core.js';

interface Pending {
  body: AdmitBody;
  port: MessagePort;
}

const { hot, maxQueue, fairness, isolatePromptTokens, placement } = workerData as {
  hot: MessagePort;
  maxQueue: number;
  fairness: Partial<FairnessConfig>;
  isolatePromptTokens: number;
  placement: 'pack' | 'spread';
};
const core = new SchedulerCore<Pending>(maxQueue, fairness, isolatePromptTokens, placement);
const links = new Map<string, MessagePort>();
const dirtyModels = new Set<string>();
let reportScheduled = false;

const linkKey = (k: EngineKey): string => `${k.model}\u0000${k.worker}`;
/**
 * Disaggregated mode: a model's prefill workers form their own pool in the core, under this key;
 * new requests queue there, and move to the model's (decode) pool at hand-off.
 */
const PREFILL = '\u0001prefill';
const prefillKey = (model: string): string => model + PREFILL;
const prefillModels = new Set<string>();
const poolOf = (model: string): string => (prefillModels.has(model) ? prefillKey(model) : model);

function forward(placements: Placement<Pending>[]): void {
  // Moves decided while placing go first: the engine must suspend its streams before it starts
  // the long prompt that made room for itself (long-prompt isolation).
  suspend(core.takeSuspensions());
  for (const p of placements) {
    const link = links.get(linkKey(p.engine));
    if (!link) {
      // The engine went away between the decision and now: the request cannot run there.
      reject(p.ref.port, new InferFluxError('worker_crashed', undefined, { retryAfter: 1 }));
      dropState(p.ref.body);
      continue;
    }
    const ring = p.ref.body.resume?.ring;
    if (ring) ring.to = p.engine.worker;
    postFrame(link, [T.Admit, p.ref.body], p.ref.port);
    // The hand-off's state goes into the chosen decode worker's ring only now that it is chosen.
    if (ring) {
      const from = links.get(linkKey({ model: prefillKey(p.ref.body.model), worker: ring.from }));
      if (from) postFrame(from, [T.Ship, { ticket: ring.ticket, to: ring.to }]);
    }
    dirtyModels.add(p.engine.model);
  }
  scheduleReport();
}

/** Ask engines to suspend running requests (preemption, timeslice yields). */
function suspend(list: Suspension[]): void {
  for (const s of list) {
    const link = links.get(linkKey(s.engine));
    if (link) postFrame(link, [T.Suspend, s.id]);
  }
}

/** A suspended request that will not resume: its saved KV file goes too. */
function dropState(body: AdmitBody): void {
  const file = body.resume?.stateFile;
  if (file) void unlink(file).catch(() => undefined);
}

function cancelled(p: Pending): void {
  postFrame(p.port, [T.Done, 'cancelled', { promptTokens: p.body.resume?.promptTokens ?? p.body.tokens.length, cachedTokens: 0, completionTokens: p.body.resume?.generated ?? 0, queueMs: 0, prefillMs: 0, decodeMs: 0, ttftMs: -1, kvTransferMs: -1, kvHydrateMs: -1, stopSequence: null }]);
  p.port.close();
  dropState(p.body);
}

/** Queue depth goes to the main thread at most once per turn of the event loop. */
function scheduleReport(): void {
  if (reportScheduled) return;
  reportScheduled = true;
  setImmediate(() => {
    reportScheduled = false;
    for (const key of dirtyModels) {
      const phase = key.endsWith(PREFILL) ? 'prefill' : 'decode';
      const model = phase === 'prefill' ? key.slice(0, -PREFILL.length) : key;
      postFrame(hot, [T.QueueDepth, { model, phase, ...core.depth(key) }]);
    }
    dirtyModels.clear();
  });
}

function reject(port: MessagePort, err: InferFluxError): void {
  postFrame(port, [T.Fail, err.toWire()]);
  port.close();
}

hot.on('message', (env: Envelope) => {
  const frame = unpack<ToScheduler>(env.f);
  switch (frame[0]) {
    case T.Admit: {
      const body = frame[1];
      const port = env.port!;
      const pool = poolOf(body.model);
      // Unified pools only: a prefill pool's requests leave after their first token anyway.
      const mayIsolate = pool === body.model;
      const a = core.admit(body.id, pool, body.priority, { body, port }, { tenant: body.tenant, promptTokens: body.tokens.length, prefix: body.prefix, mayIsolate, adapter: body.adapter?.key ?? '' });
      if (a.kind === 'place') forward([{ engine: a.engine, id: a.id, ref: a.ref }]);
      else if (a.kind === 'reject') {
        reject(port, new InferFluxError('queue_full', `The queue for model '${body.model}' is full.`, { retryAfter: 1 }));
      } else {
        suspend(a.suspend);
        // Pushed out of a full queue to make room for a tenant with fewer requests waiting.
        for (const e of a.evict) reject(e.ref.port, new InferFluxError('queue_full', `The queue for model '${body.model}' is full.`, { retryAfter: 1 }));
      }
      dirtyModels.add(pool);
      scheduleReport();
      break;
    }
    case T.Cancel: {
      const pending = core.cancel(frame[1]);
      if (pending) {
        cancelled(pending);
        dirtyModels.add(pending.body.model);
        scheduleReport();
      }
      break;
    }
    case T.EngineUp: {
      const { worker, sequences, active, role } = frame[1];
      if (role === 'prefill') prefillModels.add(frame[1].model);
      const model = role === 'prefill' ? prefillKey(frame[1].model) : frame[1].model;
      const key = { model, worker };
      const link = env.port!;
      links.set(linkKey(key), link);
      link.on('message', (data: Envelope) => {
        const f = unpack<FromEngine>(data.f);
        switch (f[0]) {
          case T.Released:
            forward(core.released(f[1], key, f[2]));
            dirtyModels.add(model);
            scheduleReport();
            break;
          case T.Resident:
            core.residentPrefixes(key, f[1]);
            break;
          case T.Handoff: {
            // Prompt done on a prefill worker: free its sequence, queue the request for decode.
            const { body, generated } = f[1];
            forward(core.released(body.id, key, generated));
            const a = core.admit(body.id, body.model, body.priority, { body, port: data.port! }, { tenant: body.tenant, promptTokens: 0, prefix: body.prefix, adapter: body.adapter?.key ?? '' });
            if (a.kind === 'place') forward([{ engine: a.engine, id: a.id, ref: a.ref }]);
            else if (a.kind === 'reject') {
              reject(data.port!, new InferFluxError('queue_full', `The decode queue for model '${body.model}' is full.`, { retryAfter: 1 }));
            } else {
              suspend(a.suspend);
              for (const e of a.evict) reject(e.ref.port, new InferFluxError('queue_full', `The queue for model '${body.model}' is full.`, { retryAfter: 1 }));
            }
            dirtyModels.add(body.model);
            dirtyModels.add(model);
            scheduleReport();
            break;
          }
          case T.Progress: {
            const pairs = f[1];
            const due: Suspension[] = [];
            for (let i = 0; i + 1 < pairs.length; i += 2) due.push(...core.progress(pairs[i] as RequestId, pairs[i + 1] as number));
            suspend(due);
            break;
          }
          case T.Suspended: {
            const { body, generated } = f[1];
            const r = core.suspended(body.id, { body, port: data.port! }, generated);
            if (r.drop) cancelled(r.drop);
            forward(r.placements);
            dirtyModels.add(model);
            scheduleReport();
            break;
          }
          default: {
            const never: never = f[0];
            throw new Error(`scheduler: unknown engine frame ${String(never)}`);
          }
        }
      });
      forward(core.engineUp(key, sequences, active));
      break;
    }
    case T.EngineDown: {
      const key = { model: frame[1].role === 'prefill' ? prefillKey(frame[1].model) : frame[1].model, worker: frame[1].worker };
      links.get(linkKey(key))?.close();
      links.delete(linkKey(key));
      core.engineDown(key);
      dirtyModels.add(key.model);
      scheduleReport();
      break;
    }
    default: {
      const never: never = frame[0];
      throw new Error(`scheduler: unknown frame ${String(never)}`);
    }
  }
});

const api = {
  hello: (): WorkerHello => ({ protocolVersion: PROTOCOL_VERSION }),
  depth: (model: string) => core.depth(model),
  /** Live update of runtime.fairness.*; may suspend running requests at once. */
  setFairness: (patch: Partial<FairnessConfig>) => {
    suspend(core.setFairness(patch));
    return core.fairness();
  },
  fairness: () => {
    const c = core.counters();
    return {
      config: core.fairness(),
      preemptions: c.preemptions,
      yields: c.yields,
      migrations: c.migrations,
      resumes: c.resumes,
      tokensByPriority: [...c.tokensByPriority.entries()],
      tokensByTenant: [...c.tokensByTenant.entries()],
    };
  },
};
export type SchedulerApi = typeof api;
exposeRpc(api, parentPort!);
