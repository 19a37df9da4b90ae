/**
 * Checks on a JSON Schema before any compile work: serialized size, nesting depth, node count,
 * and that every keyword anywhere in it (unused `$defs` included) is one the compiler honours or
 * a pure annotation. Iterative, so a deeply nested schema is a 400, never a stack overflow.
 */
import { InferFluxError } from '../../errors.js';

export type JsonObject = { [key: string]: unknown };

export interface SchemaLimits {
  /** Bytes of the schema as JSON. */
  maxSchemaBytes: number;
  /** Nesting of JSON objects/arrays in the schema document. */
  maxSchemaDepth: number;
  /** Subschemas in the document. */
  maxSchemaNodes: number;
  /** Named grammar rules the compiled grammar may have. */
  maxRules: number;
  /** Bytes of the compiled GBNF. */
  maxGrammarBytes: number;
}

export const GRAMMAR_LIMITS: SchemaLimits = {
  maxSchemaBytes: 64 * 1024,
  maxSchemaDepth: 64,
  maxSchemaNodes: 2000,
  maxRules: 4000,
  maxGrammarBytes: 512 * 1024,
};

/** Keywords the compiler honours. */
export const SUPPORTED_KEYWORDS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'enum',
  'const',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
  '$defs',
  'definitions',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'format',
]);

/** Keywords that do not constrain values; accepted and ignored. */
export const ANNOTATION_KEYWORDS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly']);

const TYPE_NAMES = new Set(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array']);

export function checkSchemaShape(schema: unknown, limits: SchemaLimits, param: string): void {
  const fail = (message: string): never => {
    throw new InferFluxError('invalid_request', message, { param });
  };
  if (schema === undefined || schema === null || (typeof schema !== 'object' && typeof schema !== 'boolean') || Array.isArray(schema)) {
    fail('The JSON schema must be an object (or a boolean).');
  }
  // Depth first, without recursion, before JSON.stringify (which recurses).
  const stack: Array<[unknown, number]> = [[schema, 1]];
  let values = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.maxSchemaDepth) fail(`The JSON schema nests deeper than ${limits.maxSchemaDepth} levels.`);
    if (++values > limits.maxSchemaNodes * 8) fail(`The JSON schema is too large.`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  if (JSON.stringify(schema).length > limits.maxSchemaBytes) fail(`The JSON schema is larger than ${limits.maxSchemaBytes} bytes.`);

  let nodes = 0;
  const walk: Array<[unknown, string]> = [[schema, '']];
  while (walk.length > 0) {
    const [s, path] = walk.pop()!;
    const at = path || '/';
    if (typeof s === 'boolean') continue;
    if (s === null || typeof s !== 'object' || Array.isArray(s)) fail(`The schema at ${at} must be an object or a boolean.`);
    if (++nodes > limits.maxSchemaNodes) fail(`The JSON schema has more than ${limits.maxSchemaNodes} subschemas.`);
    const o = s as JsonObject;
    for (const [k, v] of Object.entries(o)) {
      if (ANNOTATION_KEYWORDS.has(k)) continue;
      if (!SUPPORTED_KEYWORDS.has(k)) fail(`Unsupported JSON Schema keyword '${k}' at ${at}.`);
      const bad = (what: string): never => fail(`'${k}' at ${at} must be ${what}.`);
      switch (k) {
        case 'type': {
          const list = Array.isArray(v) ? v : [v];
          if (list.length === 0 || !list.every((t) => typeof t === 'string' && TYPE_NAMES.has(t))) bad('a JSON type name or an array of them');
          break;
        }
        case 'properties':
        case '$defs':
        case 'definitions':
          if (v === null || typeof v !== 'object' || Array.isArray(v)) bad('an object');
          for (const [name, sub] of Object.entries(v as JsonObject)) walk.push([sub, `${path}/${k}/${name}`]);
          break;
        case 'required':
          if (!Array.isArray(v) || !v.every((r) => typeof r === 'string') || new Set(v).size !== v.length) bad('an array of distinct strings');
          break;
        case 'additionalProperties':
          walk.push([v, `${path}/${k}`]);
          break;
        case 'items':
          if (Array.isArray(v)) fail(`'items' as an array at ${at} is not supported; use 'prefixItems'.`);
          walk.push([v, `${path}/${k}`]);
          break;
        case 'prefixItems':
        case 'anyOf':
        case 'oneOf':
        case 'allOf':
          if (!Array.isArray(v) || v.length === 0) bad('a non-empty array of schemas');
          (v as unknown[]).forEach((sub, i) => walk.push([sub, `${path}/${k}/${i}`]));
          break;
        case 'enum':
          if (!Array.isArray(v) || v.length === 0) bad('a non-empty array');
          break;
        case 'const':
          break;
        case '$ref':
          if (typeof v !== 'string') bad('a string');
          break;
        case 'pattern':
        case 'format':
          if (typeof v !== 'string') bad('a string');
          break;
        case 'minimum':
        case 'maximum':
          if (typeof v !== 'number' || !Number.isFinite(v)) bad('a finite number');
          break;
        case 'exclusiveMinimum':
        case 'exclusiveMaximum':
          if (typeof v === 'boolean') fail(`'${k}' as a boolean (draft 4) at ${at} is not supported; give the bound as a number.`);
          if (typeof v !== 'number' || !Number.isFinite(v)) bad('a finite number');
          break;
        case 'minItems':
        case 'maxItems':
        case 'minLength':
        case 'maxLength':
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad('a non-negative integer');
          break;
      }
    }
  }
}
