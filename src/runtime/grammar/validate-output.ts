/**
 * Checks a constrained output against its schema with ajv after generation: the grammar makes
 * validity near-certain, this makes it checked (and counted). Draft 2020-12 (Ajv2020) unless
 * the schema's `$schema` names draft-07 or older; ajv-formats in "full" mode, which the format
 * grammars (formats.ts) are written against. Compiled validators are cached by schema hash (LRU).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { LRUCache } from 'lru-cache';
import { InferFluxError } from '../../errors.js';
import { schemaHash } from './schema-hash.js';

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the module.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv | Ajv2020,
  opts?: { mode: 'full' | 'fast' },
) => void;

export type OutputCheck =
  | { valid: true; value: unknown }
  | { valid: false; reason: 'not_json' | 'schema'; message: string };

const options = { strict: false, allErrors: false, validateFormats: true } as const;
const ajv2020 = new Ajv2020(options);
const ajv07 = new Ajv(options);
addFormats(ajv2020, { mode: 'full' });
addFormats(ajv07, { mode: 'full' });

const validators = new LRUCache<string, ValidateFunction>({ max: 256 });

function ajvFor(schema: unknown): Ajv | Ajv2020 {
  const id = typeof schema === 'object' && schema !== null ? (schema as { $schema?: unknown }).$schema : undefined;
  return typeof id === 'string' && /draft-0[4-7]/.test(id) ? ajv07 : ajv2020;
}

/**
 * The compiled validator for a schema (cached). Throws InferFluxError('invalid_request') naming
 * `param` when ajv cannot compile it, so call it before generating to refuse such a schema early.
 */
export function outputValidator(schema: unknown, param = 'response_format.json_schema.schema', hash = schemaHash(schema)): ValidateFunction {
  const known = validators.get(hash);
  if (known) return known;
  let fn: ValidateFunction;
  try {
    fn = ajvFor(schema).compile(schema as object);
  } catch (err) {
    throw new InferFluxError('invalid_request', `The JSON schema is not valid: ${(err as Error).message}`, { param, cause: err });
  }
  validators.set(hash, fn);
  return fn;
}

/** Parse `text` as JSON and validate it against `schema` (null: any JSON object, json_object mode). */
export function validateOutput(schema: unknown, text: string, hash?: string): OutputCheck {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { valid: false, reason: 'not_json', message: (err as Error).message };
  }
  if (schema === null) {
    const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
    return isObject ? { valid: true, value } : { valid: false, reason: 'schema', message: 'the output is not a JSON object' };
  }
  const fn = outputValidator(schema, undefined, hash);
  if (fn(value)) return { valid: true, value };
  const e = fn.errors?.[0];
  return { valid: false, reason: 'schema', message: e ? `${e.instancePath || '/'} ${e.message ?? 'is invalid'}` : 'invalid' };
}
