/**
 * Request-schema validation. Validators are compiled when a route registers (a bad schema fails
 * start-up naming the route); at request time only the compiled function runs. A violation becomes
 * a 400 `invalid_request` whose `param` names the field the way OpenAI does (`messages[0].content`).
 */
import { Ajv, type ErrorObject } from 'ajv';
import { InferFluxError } from '../errors.js';

// One Ajv instance for all routes; `strict` catches typos in the schemas themselves at start-up.
const ajv = new Ajv({ allErrors: true, strict: true, coerceTypes: false, useDefaults: false });

export type Validator<T> = (body: unknown) => T;

export function compileRequestSchema<T>(route: string, schema: object): Validator<T> {
  let check: ReturnType<typeof ajv.compile>;
  try {
    check = ajv.compile(schema);
  } catch (err) {
    throw new Error(`invalid request schema for ${route}: ${(err as Error).message}`, { cause: err });
  }
  return (body: unknown): T => {
    if (check(body)) return body as T;
    throw toInvalidRequest(check.errors ?? [], body);
  };
}

/** `/messages/0/content` -> `messages[0].content`; array indexes only where the body has arrays. */
function paramOf(instancePath: string, body: unknown): string {
  let cur = body;
  let out = '';
  for (const raw of instancePath.split('/').slice(1)) {
    const p = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    out += Array.isArray(cur) ? `[${p}]` : out === '' ? p : `.${p}`;
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  }
  return out;
}

function valueAt(body: unknown, instancePath: string): unknown {
  let cur = body;
  for (const p of instancePath.split('/').slice(1)) {
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[p.replaceAll('~1', '/').replaceAll('~0', '~')] : undefined;
  }
  return cur;
}

function preview(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Picks the most useful of ajv's errors: the deepest path wins (a bad `messages[3].role` is more
 * useful than "messages is invalid"), `anyOf` summaries are dropped, and when only type errors from
 * the branches of an `anyOf` remain they are joined ("must be string or must be array").
 */
export function toInvalidRequest(errors: ErrorObject[], body: unknown): InferFluxError {
  const real = errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && e.keyword !== 'if');
  const pool = real.length > 0 ? real : errors;
  const pathOf = (e: ErrorObject) =>
    e.keyword === 'required'
      ? `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`
      : e.keyword === 'propertyNames'
        ? `${e.instancePath}/${(e.params as { propertyName: string }).propertyName}`
        : e.keyword === 'additionalProperties'
          ? `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`
          : e.instancePath;
  const depth = (e: ErrorObject) => pathOf(e).split('/').length;
  const maxDepth = Math.max(...pool.map(depth));
  const deepest = pool.filter((e) => depth(e) === maxDepth);
  // At equal depth a broken value (`const`, `maximum`...) explains more than a missing sibling
  // (`required`), which explains more than a type error from another `anyOf` branch.
  const rank = (e: ErrorObject) => (e.keyword === 'type' || e.keyword === 'propertyNames' ? 2 : e.keyword === 'required' ? 1 : 0);
  const best = Math.min(...deepest.map(rank));
  const chosen = best === 2 ? deepest : [deepest.find((e) => rank(e) === best)!];
  const at = pathOf(chosen[0]!);
  const param = paramOf(at, body);
  const first = chosen[0]!;
  let message: string;
  if (first.keyword === 'required') {
    message = `Missing required parameter: '${param}'.`;
  } else if (first.keyword === 'additionalProperties') {
    // OpenAI's wording. A field we do not implement is refused, never silently ignored.
    message = `Unrecognized request argument supplied: '${param}'. InferFlux does not implement it; remove it from the request.`;
  } else if (first.keyword === 'propertyNames') {
    message = `Invalid key in '${paramOf(first.instancePath, body)}': ${preview((first.params as { propertyName: string }).propertyName)} (must be a token id).`;
  } else {
    const what = [...new Set(chosen.map((e) => e.message ?? 'is invalid'))].join(' or ');
    message = `Invalid value for '${param}': ${what} (got ${preview(valueAt(body, at))}).`;
  }
  if (at === '') return new InferFluxError('invalid_request', `The request body ${first.message ?? 'is invalid'}.`);
  return new InferFluxError('invalid_request', message, {
    param: first.keyword === 'propertyNames' ? paramOf(first.instancePath, body) : param,
  });
}
