/**
 * `GET /debug`: what an operator looks at when a request was slow or an engine seems stuck. The
 * last finished requests' token traces (queue, prefill, decode, and the gaps between tokens), every
 * engine worker's live state with its step loop's time split (decode, sampling, detokenize and
 * post, between steps), and the loaded LoRA adapters. `GET /debug/traces/{request_id}` is one
 * request's whole trace: when each of its tokens reached the server, per choice.
 *
 * Scope `admin` (src/policy/rbac.ts). Times, counts and ids only: no prompt, no text, no token id.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../../../errors.js';
import type { EngineDebug } from '../../../generation/contract.js';
import { SERVER_VERSION } from '../../../version.js';
import { sendError, sendJson } from '../../respond.js';
import type { Router } from '../../router.js';
import type { HttpDeps, RequestContext } from '../../types.js';
import { adminAdapterView } from '../admin-adapters/schema.js';

const NO_STORE = { 'cache-control': 'no-store' };

const perStep = (ms: number, steps: number): number => (steps === 0 ? 0 : Math.round((ms / steps) * 1000) / 1000);

/** One engine worker, snake_case, its cumulative step times as a per-step average. */
function engineView(e: EngineDebug) {
  const s = e.status;
  return {
    model: e.model,
    role: e.role,
    worker: e.worker,
    state: e.stopping ? 'stopping' : e.ready ? 'ready' : 'starting',
    status:
      s === null
        ? null
        : {
            active_sequences: s.active,
            paused_sequences: s.paused,
            steps: s.steps,
            batched_tokens: s.batchedTokens,
            cancelled: s.cancelled,
            adapter: s.adapter === '' ? null : s.adapter,
            adapter_swaps: s.adapterSwaps,
            kv_tickets: { shipped: s.shippedTickets, blocked: s.blockedTickets },
            grammar_samples: s.grammarSamples,
            step_ms: {
              steps: s.stepTiming.steps,
              decode: perStep(s.stepTiming.decodeMs, s.stepTiming.steps),
              sample: perStep(s.stepTiming.sampleMs, s.stepTiming.steps),
              apply: perStep(s.stepTiming.applyMs, s.stepTiming.steps),
              between: perStep(s.stepTiming.betweenMs, s.stepTiming.steps),
            },
          },
  };
}

export function register(app: Router, deps: HttpDeps): void {
  const debug = deps.gateway.debug;
  if (!debug) return;
  app.get('/debug', async (res: HttpResponse) => {
    const engines = await debug.engines();
    sendJson(
      res,
      200,
      {
        object: 'debug',
        time: new Date().toISOString(),
        version: SERVER_VERSION,
        engines: engines.map(engineView),
        adapters: deps.gateway.adapterControl?.list().map(adminAdapterView) ?? [],
        token_traces: debug.traces(),
      },
      NO_STORE,
    );
  });
  app.get('/debug/traces/:id', (res: HttpResponse, ctx: RequestContext) => {
    const id = ctx.params.id ?? '';
    const trace = debug.trace(id);
    if (!trace) {
      return sendError(res, new InferFluxError('not_found', `No token trace for request ${JSON.stringify(id.slice(0, 128))}: /debug keeps the last finished requests only.`));
    }
    sendJson(res, 200, { object: 'debug.token_trace', ...trace }, NO_STORE);
  });
}
