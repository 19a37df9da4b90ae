/**
 * Reads a JSON request body. uWS has no body limit, so bytes are counted as they arrive and the
 * request is answered 413 the moment the limit is passed, without buffering the rest. The caller
 * must already have an abort handler attached (the dispatcher does it before calling any route).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { InferFluxError } from '../errors.js';
import { exchangeOf } from './exchange.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from './json-depth.js';
import { sendError } from './respond.js';
import type { RequestContext } from './types.js';

/**
 * JSON, or no content-type, or curl's default: `curl -d '{...}'` without
 * `-H 'content-type: application/json'` sends `application/x-www-form-urlencoded`.
 */
function isJsonType(contentType: string): boolean {
  if (contentType === '') return true;
  const mime = contentType.split(';', 1)[0]!.trim();
  if (mime === 'application/json' || mime === 'application/x-www-form-urlencoded') return true;
  return mime.startsWith('application/') && mime.endsWith('+json');
}

function tooLarge(limit: number): InferFluxError {
  return new InferFluxError('request_too_large', `The request body exceeds ${limit} bytes.`);
}

/**
 * Collects the raw body. Rejects with `request_too_large` past `limit` (without answering: the
 * caller does) and with `invalid_request` when the client leaves. Attach it synchronously in the
 * uWS handler: uWS drops body chunks that arrive before `onData` is set.
 */
function collectBody(res: HttpResponse, contentLength: number | undefined, limit: number): Promise<Buffer> {
  const ex = exchangeOf(res);
  if (contentLength !== undefined && contentLength > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    ex.abortHandlers.push(() => {
      if (!settled) reject(new InferFluxError('invalid_request', 'The client closed the connection.'));
      settled = true;
    });
    res.onData((chunk, isLast) => {
      if (settled) return;
      size += chunk.byteLength;
      if (size > limit) {
        settled = true;
        reject(tooLarge(limit));
        return;
      }
      // uWS reuses (neuters) the ArrayBuffer after this callback returns: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      settled = true;
      resolve(Buffer.concat(chunks, size));
    });
  });
}

/**
 * Starts reading the body now, for a handler that will run after an await (an OIDC token being
 * verified). `readJsonBody` then uses these bytes. A request denied meanwhile just drops them.
 */
export function bufferBodyEarly(res: HttpResponse, ctx: RequestContext, limit: number): void {
  const p = collectBody(res, ctx.contentLength, limit);
  p.catch(() => undefined); // observed by readJsonBody, or never (the request was denied)
  ctx.bodyBuffer = p;
}

/**
 * Resolves with the parsed body. On a bad body (too large, not JSON, nested deeper than
 * MAX_JSON_DEPTH) it answers the client itself (413/415/400) and
 * rejects with the same error, so the route just returns; it also rejects if the client leaves.
 */
export function readJsonBody(res: HttpResponse, ctx: RequestContext, limit: number): Promise<unknown> {
  const fail = (err: InferFluxError, close = false): InferFluxError => {
    sendError(res, err, { closeConnection: close });
    return err;
  };
  if (!isJsonType(ctx.contentType)) {
    // The body is never read, so the connection cannot be reused for the next request.
    return Promise.reject(fail(new InferFluxError('unsupported_media_type'), true));
  }
  const raw = ctx.bodyBuffer ?? collectBody(res, ctx.contentLength, limit);
  return raw.then(
    (bytes) => {
      if (jsonDepthExceeds(bytes, MAX_JSON_DEPTH)) {
        throw fail(new InferFluxError('invalid_request', `The request body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep (the limit).`));
      }
      try {
        return JSON.parse(bytes.toString('utf8')) as unknown;
      } catch (err) {
        throw fail(new InferFluxError('invalid_json', `The request body is not valid JSON: ${(err as Error).message}`));
      }
    },
    (err: InferFluxError) => {
      throw err.code === 'request_too_large' ? fail(err, true) : err;
    },
  );
}
