/**
 * The structured-output contract's schemas: nested objects, arrays with min/max items, enums,
 * required and optional properties, bounded numbers, patterns, formats, anyOf/oneOf/allOf, refs.
 * Shared by the engine-level contract (grammar-contract.test.ts) and the HTTP one
 * (structured-output.test.ts).
 */
const str = (maxLength: number, minLength = 0) => ({ type: 'string', minLength, maxLength });
const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum });

/** Every string is bounded, so each answer is finite and the grammar, not the limit, ends it. */
export const CONTRACT_SCHEMAS: Record<string, unknown> = {
  flat: { type: 'object', properties: { name: str(8), age: int(0, 120), active: { type: 'boolean' } }, required: ['name', 'age', 'active'], additionalProperties: false },
  optional: { type: 'object', properties: { id: int(1, 999), nickname: str(6), score: { type: 'number', minimum: 0, maximum: 1 } }, required: ['id'] },
  nested: {
    type: 'object',
    properties: { user: { type: 'object', properties: { first: str(6, 1), last: str(6, 1) }, required: ['first', 'last'] }, meta: { type: 'object', properties: { created: { type: 'string', format: 'date' } } } },
    required: ['user'],
  },
  tags: { type: 'object', properties: { tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, minItems: 1, maxItems: 4 } }, required: ['tags'] },
  colour: { enum: ['red', 'green', 'blue'] },
  bounds: { type: 'object', properties: { t: { type: 'number', exclusiveMinimum: -10, exclusiveMaximum: 10 }, n: int(-5, 5) }, required: ['t', 'n'] },
  pattern: { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]{3}-\\d{2,4}$' } }, required: ['code'] },
  times: {
    type: 'object',
    properties: { when: { type: 'string', format: 'date-time' }, day: { type: 'string', format: 'date' }, at: { type: 'string', format: 'time' } },
    required: ['when', 'day', 'at'],
  },
  ids: {
    type: 'object',
    properties: { id: { type: 'string', format: 'uuid' }, mail: { type: 'string', format: 'email' }, site: { type: 'string', format: 'uri' } },
    required: ['id', 'mail', 'site'],
  },
  anyOf: { type: 'object', properties: { value: { anyOf: [int(0, 9), str(3), { type: 'null' }] } }, required: ['value'] },
  tree: {
    $defs: { node: { type: 'object', properties: { v: int(0, 9), kids: { type: 'array', maxItems: 2, items: { $ref: '#/$defs/node' } } }, required: ['v'] } },
    $ref: '#/$defs/node',
  },
  points: {
    definitions: { point: { type: 'object', properties: { x: int(-9, 9), y: int(-9, 9) }, required: ['x', 'y'] } },
    type: 'object',
    properties: { a: { $ref: '#/definitions/point' }, b: { $ref: '#/definitions/point' } },
    required: ['a', 'b'],
  },
  tuple: { type: 'array', prefixItems: [str(4), int(0, 50), { type: 'boolean' }], items: false, minItems: 3 },
  rows: { type: 'array', items: { type: 'object', properties: { k: { enum: ['x', 'y'] }, v: int(0, 99) }, required: ['k', 'v'] }, maxItems: 3 },
  allOf: { allOf: [{ type: 'object', properties: { a: int(0, 3) }, required: ['a'] }, { properties: { b: { type: 'boolean' } }, required: ['b'] }] },
  oneOf: { type: 'object', properties: { x: { oneOf: [int(0, 5), str(2)] } }, required: ['x'] },
  constAndTypes: { type: 'object', properties: { kind: { const: 'event' }, level: { type: ['integer', 'null'], minimum: 0, maximum: 3 } }, required: ['kind', 'level'] },
  matrix: { type: 'array', items: { type: 'array', items: int(0, 9), minItems: 1, maxItems: 3 }, minItems: 1, maxItems: 3 },
  text: { type: 'string', minLength: 2, maxLength: 5 },
  price: { type: 'number', minimum: 0.5, maximum: 99.5 },
  flags: { type: 'object', properties: { ok: { type: 'boolean' }, err: { type: 'null' }, note: str(4) } },
  deep: {
    type: 'object',
    properties: { a: { type: 'object', properties: { b: { type: 'object', properties: { c: { type: 'object', properties: { d: int(0, 1) }, required: ['d'] } }, required: ['c'] } }, required: ['b'] } },
    required: ['a'],
  },
  answer: { type: 'object', properties: { answer: { type: 'string', pattern: '^(yes|no|maybe)$' }, why: { anyOf: [str(5), { type: 'null' }] } }, required: ['answer', 'why'] },
  strictLike: {
    type: 'object',
    properties: { title: str(10, 1), count: int(0, 1000), ratio: { type: 'number', minimum: -1, maximum: 1 }, items: { type: 'array', items: str(3), maxItems: 2 } },
    required: ['title', 'count', 'ratio', 'items'],
    additionalProperties: false,
  },
};

/** (temperature, seed) per schema: 9 generations each. */

/** (temperature, seed) runs per schema: greedy, and sampled at three temperatures with varied seeds. */
export const CONTRACT_RUNS: Array<[number, number]> = [
  [0, 0],
  [0.7, 11],
  [0.7, 12],
  [1.0, 21],
  [1.0, 22],
  [1.0, 23],
  [1.5, 31],
  [1.5, 32],
  [1.5, 33],
];
