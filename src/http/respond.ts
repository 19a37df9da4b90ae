/**
 * Writing whole responses. Every write happens inside `res.cork()` (outside the synchronous part
 * of a uWS handler, uncorked writes go out as separate syscalls and, for status/headers, can fail)
 * and never after the client left: writing to an aborted uWS response crashes the process.
 */
import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from 'uWebSockets.js';
import { errorBody, type InferFluxError } from '../errors.js';
import { exchangeOf, finish } from './exchange.js';

export type Headers = Record<string, string>;

export function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

/**
 * Sends a complete response; a no-op once the client left or a response was already sent.
 * `headOnly`: the answer to a HEAD request, the GET's status and headers (its length too) without the body.
 */
export function sendRaw(
  res: HttpResponse,
  status: number,
  body: string,
  contentType: string,
  headers: Headers = {},
  closeConnection = false,
  headOnly = false,
): void {
  const ex = exchangeOf(res);
  if (ex.aborted || ex.done) return;
  res.cork(() => {
    res.writeStatus(statusLine(status));
    res.writeHeader('content-type', contentType);
    res.writeHeader('x-request-id', ex.requestId);
    for (const k in ex.headers) if (!(k in headers)) res.writeHeader(k, ex.headers[k]!);
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    if (headOnly) res.endWithoutBody(Buffer.byteLength(body), closeConnection);
    else res.end(body, closeConnection);
  });
  finish(ex, status);
}

export function sendJson(res: HttpResponse, status: number, body: unknown, headers?: Headers): void {
  sendRaw(res, status, JSON.stringify(body), 'application/json', headers);
}

/**
 * The error in the envelope of the route's protocol (OpenAI's unless the route says otherwise),
 * with the table's status. `closeConnection` is for answers sent before the
 * request body was read (413), where the rest of the body would otherwise be parsed as a request.
 */
export function sendError(
  res: HttpResponse,
  err: InferFluxError,
  opts: { closeConnection?: boolean; headers?: Headers } = {},
): void {
  const ex = exchangeOf(res);
  if (ex.aborted || ex.done) return;
  ex.errorCode = err.code;
  ex.capability = err.capability;
  const headers: Headers = { ...opts.headers };
  if (err.retryAfter !== undefined) headers['retry-after'] = String(Math.max(0, Math.ceil(err.retryAfter)));
  sendRaw(res, err.status, JSON.stringify(errorBody(ex.protocol, err)), 'application/json', headers, opts.closeConnection);
}
