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
import { SchedulerCore, type EngineKey, type Placement } from './core.js';

interface Pending {
  body: AdmitBody;
  port: MessagePort;
}

const { hot, maxQueue } = workerData as { hot: MessagePort; maxQueue: number };
const core = new SchedulerCore<Pending>(maxQueue);
const links = new Map<string, MessagePort>();
const dirtyModels = new Set<string>();
let reportScheduled = false;

const linkKey = (k: EngineKey): string => `${k.model}\u0000${k.worker}`;

function forward(placements: Placement<Pending>[]): void {
  for (const p of placements) {
    const link = links.get(linkKey(p.engine));
    if (!link) continue;
    postFrame(link, [T.Admit, p.ref.body], p.ref.port);
    dirtyModels.add(p.engine.model);
  }
  scheduleReport();
}

/** Queue depth goes to the main thread at most once per turn of the event loop. */
function scheduleReport(): void {
  if (reportScheduled) return;
  reportScheduled = true;
  setImmediate(() => {
    reportScheduled = false;
    for (const model of dirtyModels) postFrame(hot, [T.QueueDepth, { model, ...core.depth(model) }]);
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
      const a = core.admit(body.id, body.model, body.priority, { body, port });
      if (a.kind === 'place') forward([{ engine: a.engine, id: a.id, ref: a.ref }]);
      else if (a.kind === 'reject') {
        reject(port, new InferFluxError('queue_full', `The queue for model '${body.model}' is full.`, { retryAfter: 1 }));
      }
      dirtyModels.add(body.model);
      scheduleReport();
      break;
    }
    case T.Cancel: {
      const pending = core.cancel(frame[1]);
      if (pending) {
        postFrame(pending.port, [T.Done, 'cancelled', { promptTokens: pending.body.tokens.length, completionTokens: 0, queueMs: 0, prefillMs: 0, decodeMs: 0, ttftMs: -1 }]);
        pending.port.close();
        dirtyModels.add(pending.body.model);
        scheduleReport();
      }
      break;
    }
    case T.EngineUp: {
      const { model, worker, sequences, active } = frame[1];
      const key = { model, worker };
      const link = env.port!;
      links.set(linkKey(key), link);
      link.on('message', (data: Envelope) => {
        const f = unpack<FromEngine>(data.f);
        switch (f[0]) {
          case T.Released:
            forward(core.released(f[1] as RequestId, key));
            dirtyModels.add(model);
            scheduleReport();
            break;
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
      const key = frame[1];
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
};
export type SchedulerApi = typeof api;
exposeRpc(api, parentPort!);
