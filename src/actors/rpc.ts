/**
 * Control-plane RPC between the main thread and actors: comlink over a worker's `parentPort`
 * (or any MessagePort). Hot-path traffic never goes through here; it uses msgpackr frames.
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';

export type Remote<T> = Comlink.Remote<T>;

/** Serve `api` to whoever holds the other end of `port` (inside a worker: `parentPort`). */
export function exposeRpc(api: object, port: MessagePort): void {
  Comlink.expose(api, nodeEndpoint(port as never));
}

/** Call an actor's control API. */
export function connectRpc<T>(target: Worker | MessagePort): Remote<T> {
  return Comlink.wrap<T>(nodeEndpoint(target as never));
}
