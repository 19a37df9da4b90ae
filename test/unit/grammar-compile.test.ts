/**
 * The JSON Schema -> GBNF compiler, keyword by keyword. Acceptance is decided by llama.cpp itself
 * (`AddonGrammar.isTextCompatible`, the same parser and matcher that constrains sampling), and
 * every text the grammar accepts is also checked with ajv (validate-output.ts), so a grammar that
 * lets through an invalid value fails here.
 */
import { expect } from 'chai';
import { LlamaLogLevel, getLlama, type Llama } from 'node-llama-cpp';
import { InferFluxError } from '../../src/errors.js';
import { checkGbnf } from '../../src/runtime/grammar/gbnf-check.js';
import { compileAnyJsonObject, compileJsonSchema } from '../../src/runtime/grammar/json-schema-to-gbnf.js';
import { validateOutput } from '../../src/runtime/grammar/validate-output.js';

interface NativeGrammar {
  isTextCompatible(text: string): boolean;
}

describe('JSON Schema -> GBNF compiler', function () {
  this.timeout(60_000);
  let llama: Llama;
  let bindings: { AddonGrammar: new (text: string, opts: object) => NativeGrammar };

  before(async () => {
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 1 });
    bindings = (llama as unknown as { _bindings: typeof bindings })._bindings;
  });
  after(async () => {
    await llama?.dispose();
  });

  function grammar(schema: unknown): NativeGrammar {
    const { gbnf } = compileJsonSchema(schema, { param: 'response_format.json_schema.schema' });
    checkGbnf(gbnf, 'grammar'); // every compiled grammar passes our own raw-GBNF check
    return new bindings.AddonGrammar(gbnf, { addonExports: bindings, rootRuleName: 'root' });
  }

  /** Asserts llama.cpp accepts exactly the `yes` texts, and that ajv agrees each is valid. */
  function expectLanguage(schema: unknown, yes: string[], no: string[]): void {
    const g = grammar(schema);
    for (const t of yes) {
      expect(g.isTextCompatible(t), `grammar should accept ${t}`).to.equal(true);
      expect(validateOutput(schema, t), `ajv should accept ${t}`).to.include({ valid: true });
    }
    for (const t of no) expect(g.isTextCompatible(t), `grammar should refuse ${t}`).to.equal(false);
  }

  function refusal(schema: unknown, limits?: { maxRules: number }): InferFluxError {
    try {
      compileJsonSchema(schema, { param: 'response_format.json_schema.schema', limits });
    } catch (err) {
      expect(err).to.be.instanceOf(InferFluxError);
      const e = err as InferFluxError;
      expect(e.code).to.equal('invalid_request');
      expect(e.status).to.equal(400);
      expect(e.param).to.equal('response_format.json_schema.schema');
      return e;
    }
    throw new Error(`expected ${JSON.stringify(schema).slice(0, 200)} to be refused`);
  }

  it('type, including type arrays, null and boolean', () => {
    expectLanguage({ type: ['string', 'null'], maxLength: 2 }, ['null', '"ab"', '""'], ['"abc"', 'true', '1']);
    expectLanguage({ type: 'boolean' }, ['true', 'false'], ['null', '"true"']);
  });

  it('required properties come first, optional ones may be left out, in properties order', () => {
    const schema = {
      type: 'object',
      properties: { a: { type: 'boolean' }, b: { type: 'null' }, c: { type: 'boolean' } },
      required: ['c'],
    };
    expectLanguage(schema, ['{"c":true}', '{"c":true,"a":false}', '{"c":true,"a":false,"b":null}', '{ "c": true, "b": null }'], [
      '{}',
      '{"a":false,"c":true}',
      '{"c":true,"b":null,"a":false}',
    ]);
    expectLanguage({ type: 'object', properties: { a: { type: 'boolean' }, b: { type: 'null' } } }, ['{}', '{"a":true}', '{"b":null}', '{"a":true,"b":null}'], [
      '{"b":null,"a":true}',
      '{,}',
    ]);
  });

  it('whitespace is bounded: one run of a space, or a newline and up to 8 spaces, between tokens', () => {
    const schema = { type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] };
    expectLanguage(schema, ['{\n  "a": true\n}', '{ "a": true }'], ['{  "a":true}', '{\n' + ' '.repeat(9) + '"a":true}', ' {"a":true}', '{"a":true} ', '{"a":true}\n']);
  });

  it('additionalProperties: absent or false generates no extras; true or a schema allows new keys only', () => {
    expectLanguage({ type: 'object', properties: { a: { type: 'boolean' } } }, ['{"a":true}'], ['{"x":true}']);
    expectLanguage({ type: 'object', properties: { a: { type: 'boolean' } }, additionalProperties: false }, ['{}'], ['{"x":true}']);
    expectLanguage(
      { type: 'object', properties: { ab: { type: 'integer' } }, additionalProperties: { type: 'boolean' } },
      ['{"ab":1,"cd":true}', '{"a":true}', '{"abc":false}', '{"x-y_Z9":true,"q":false}'],
      ['{"ab":true}', '{"ab":1,"ab":true}', '{"cd":1}', '{"":true}', `{"${'k'.repeat(33)}":true}`],
    );
    // Known names that use every key character after a prefix leave no "other" character: no empty class.
    const alphabet = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-'];
    const every = { type: 'object', properties: Object.fromEntries(alphabet.map((c) => [`k${c}`, { type: 'null' }])), additionalProperties: { type: 'boolean' } };
    expectLanguage(every, ['{"ka":null}', '{"k":true}', '{"kab":true}', '{"x":true}'], ['{"ka":true}']);
    // An object schema that names no property is any object.
    expectLanguage({ type: 'object' }, ['{}', '{"k":[1,{"z":null}]}'], ['[]']);
  });

  it('anyOf and oneOf are alternatives; allOf merges object schemas', () => {
    expectLanguage({ anyOf: [{ type: 'string', maxLength: 1 }, { type: 'integer', minimum: 5, maximum: 6 }] }, ['"a"', '5', '6'], ['"ab"', '4', '7']);
    expectLanguage({ oneOf: [{ type: 'null' }, { type: 'boolean' }] }, ['null', 'true'], ['1']);
    expectLanguage(
      {
        allOf: [
          { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 3 } }, required: ['a'] },
          { properties: { b: { type: 'boolean' } }, required: ['b'] },
        ],
      },
      ['{"a":1,"b":true}'],
      ['{"a":1}', '{"b":true}', '{"a":4,"b":true}'],
    );
    // A branch with additionalProperties false limits the merged properties to its own.
    expectLanguage(
      { allOf: [{ properties: { a: { type: 'boolean' } }, additionalProperties: false }, { properties: { b: { type: 'boolean' } } }] },
      ['{}', '{"a":true}'],
      ['{"b":true}'],
    );
    expectLanguage({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], anyOf: [{ properties: { n: { maximum: 1 } } }, { properties: { n: { minimum: 9 } } }] }, [
      '{"n":1}',
      '{"n":9}',
    ], ['{"n":5}']);
    expect(refusal({ allOf: [{ minLength: 1 }, { minLength: 2 }] }).message).to.match(/allOf .* 'minLength'/);
  });

  it('enum and const emit the values as compact JSON, filtered by type', () => {
    expectLanguage({ enum: ['red', 2, null, { a: [1] }] }, ['"red"', '2', 'null', '{"a":[1]}'], ['"blue"', '{ "a": [1] }']);
    expectLanguage({ const: 'x' }, ['"x"'], ['"y"']);
    expectLanguage({ type: 'string', enum: ['a', 1] }, ['"a"'], ['1']);
    expect(refusal({ enum: ['a'], maxLength: 3 }).message).to.include("'maxLength' beside enum/const");
  });

  it('$ref to $defs and definitions; recursion is unrolled to a bounded depth', () => {
    expectLanguage({ definitions: { b: { type: 'boolean' } }, type: 'array', items: { $ref: '#/definitions/b' }, maxItems: 2 }, ['[true,false]'], ['[1]']);
    const tree = {
      $defs: { node: { type: 'object', properties: { v: { type: 'integer', minimum: 0, maximum: 9 }, kids: { type: 'array', maxItems: 2, items: { $ref: '#/$defs/node' } } }, required: ['v'] } },
      $ref: '#/$defs/node',
    };
    let deep = '{"v":1}';
    for (let i = 0; i < 7; i++) deep = `{"v":1,"kids":[${deep}]}`;
    expectLanguage(tree, ['{"v":1}', '{"v":1,"kids":[{"v":2,"kids":[{"v":3}]}]}', deep], [`{"v":1,"kids":[${deep}]}`]);
    const list = { type: 'object', properties: { v: { type: 'boolean' }, next: { $ref: '#' } }, required: ['v'] };
    expectLanguage(list, ['{"v":true}', '{"v":true,"next":{"v":false,"next":{"v":true}}}'], ['{"next":{"v":true}}']);
    expect(refusal({ $ref: '#/$defs/missing' }).message).to.include('points to nothing');
    expect(refusal({ $ref: 'https://example.com/s.json' }).message).to.include('is not supported');
  });

  it('pattern: the documented regex subset, anchored or not', () => {
    expectLanguage({ type: 'string', pattern: '^[a-z]{2,3}-\\d+$' }, ['"ab-1"', '"abc-123"'], ['"a-1"', '"ab-"', '"abcd-1"']);
    expectLanguage({ type: 'string', pattern: '^(cat|dog)s?$' }, ['"cat"', '"dogs"'], ['"cow"']);
    expectLanguage({ type: 'string', pattern: '^\\w\\s\\W.$' }, ['"a !."', '"_ !x"'], ['"ab.c"', '"a b."']);
    expectLanguage({ type: 'string', pattern: '^a"b\\\\$' }, ['"a\\"b\\\\"'], ['"a"b\\\\"']);
    expectLanguage({ type: 'string', pattern: '^[^a-y]{1,2}$' }, ['"z"', '"zz"', '"\\""'], ['"a"', '"zzz"']);
    expectLanguage({ type: 'string', pattern: 'x' }, ['"x"', '"axb"'], ['"ab"']);
    for (const [pattern, named] of [
      ['^(?=a)a$', 'lookaround'],
      ['^(a)\\1$', 'backreference'],
      ['^\\bword$', 'word boundary'],
      ['^\\p{L}$', 'Unicode property'],
      ['^a$|^b$', "'$' other than at the end"],
      ['a^b', "'^' other than at the start"],
      ['^a|b$', 'top-level alternation'],
      ['^a{1,5000}$', 'above 1000'],
      ['^[$', 'not a valid regular expression'],
    ] as const) {
      expect(refusal({ type: 'string', pattern }).message, pattern).to.include(named);
    }
  });

  it('integer bounds are exact digit grammars; integers never take fractions or exponents', () => {
    expectLanguage({ type: 'integer', minimum: -15, maximum: 123 }, ['-15', '-1', '0', '9', '10', '99', '123'], ['-16', '124', '-0', '007', '1.0', '1e2', '1000']);
    expectLanguage({ type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 10 }, ['1', '9'], ['0', '10']);
    expectLanguage({ type: 'integer', minimum: 1.5 }, ['2', '999999999999999'], ['1', '1000000000000000']);
    expectLanguage({ type: 'integer', maximum: -100 }, ['-100', '-999999999999999'], ['-99', '0']);
  });

  it('number bounds hold for fractions, exclusive bounds included', () => {
    expectLanguage({ type: 'number', minimum: 0.5, maximum: 2.25 }, ['0.5', '0.50', '1', '1.999999', '2', '2.2', '2.25', '2.250000'], ['0.49', '0.4999', '2.251', '2.2500001', '0', '3']);
    expectLanguage({ type: 'number', exclusiveMinimum: -1, exclusiveMaximum: 0 }, ['-0.999999', '-0.5', '-0.000001'], ['-1', '-1.0', '0', '-0', '-0.0', '0.1']);
    expectLanguage({ type: 'number' }, ['0', '-1.5', '123456789.123456'], ['1234567890', '1e5', '1.1234567', '.5', '01']);
  });

  it('number ranges agree with ajv on random bounds and random candidates', () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = (): number => Math.round((rand() * 200 - 100) * 10 ** Math.floor(rand() * 3)) / 10 ** Math.floor(rand() * 3);
    for (let round = 0; round < 30; round++) {
      const integer = rand() < 0.4;
      const [a, b] = [pick(), pick()].sort((x, y) => x - y);
      const schema: Record<string, unknown> = { type: integer ? 'integer' : 'number' };
      schema[rand() < 0.5 ? 'minimum' : 'exclusiveMinimum'] = a;
      schema[rand() < 0.5 ? 'maximum' : 'exclusiveMaximum'] = b;
      let g: NativeGrammar;
      try {
        g = grammar(schema);
      } catch {
        continue; // an empty range is refused; checked elsewhere
      }
      for (let i = 0; i < 40; i++) {
        const v = Math.round((a - 1 + rand() * (b - a + 2)) * 1000) / 1000;
        const text = integer ? String(Math.round(v)) : String(v);
        if (/e/.test(text)) continue;
        const ajvOk = validateOutput(schema, text).valid;
        expect(g.isTextCompatible(text), `${JSON.stringify(schema)} ${text}`).to.equal(ajvOk);
      }
    }
  });

  it('string minLength/maxLength count characters; escapes count as one', () => {
    expectLanguage({ type: 'string', minLength: 2, maxLength: 3 }, ['"ab"', '"abc"', '"a\\nb"', '"é€😀"', '"\\"\\\\"'], ['"a"', '"abcd"', '"\\u0041b"']);
  });

  it('formats: date, date-time, time, uuid, email, uri', () => {
    expectLanguage({ type: 'string', format: 'date' }, ['"2024-02-28"', '"1999-12-31"', '"2024-04-30"'], ['"2024-02-29"', '"2024-04-31"', '"2024-13-01"', '"24-01-01"']);
    expectLanguage({ type: 'string', format: 'time' }, ['"23:59:59Z"', '"00:00:00.5+05:30"'], ['"24:00:00Z"', '"12:00:00"', '"12:60:00Z"']);
    expectLanguage({ type: 'string', format: 'date-time' }, ['"2024-02-28T12:30:59Z"', '"2024-01-01T00:00:00.123456-08:00"'], ['"2024-02-28 12:30:59Z"']);
    expectLanguage({ type: 'string', format: 'uuid' }, ['"123e4567-e89b-12d3-a456-426614174000"'], ['"123e4567e89b12d3a456426614174000"']);
    expectLanguage({ type: 'string', format: 'email' }, ['"a.b@c.io"', '"x@y.z.com"'], ['"a@b"', '"@b.io"']);
    expectLanguage({ type: 'string', format: 'uri' }, ['"https://x.io"', '"https://a.b.io/p/q.r"'], ['"x.io"']);
    expect(refusal({ type: 'string', format: 'hostname' }).message).to.include("format 'hostname'");
    expect(refusal({ type: 'string', format: 'date', maxLength: 3 }).message).to.include('format together with');
  });

  it('arrays: items, prefixItems, minItems, maxItems', () => {
    expectLanguage({ type: 'array', items: { type: 'integer', minimum: 0, maximum: 9 }, minItems: 2, maxItems: 3 }, ['[1,2]', '[1,2,3]', '[ 1, 2 ]'], ['[1]', '[1,2,3,4]', '[]']);
    expectLanguage({ type: 'array', prefixItems: [{ type: 'string', maxLength: 2 }, { type: 'integer' }], items: false }, ['[]', '["a"]', '["a",1]'], ['["a",1,2]', '[1]']);
    expectLanguage({ type: 'array', prefixItems: [{ const: 'x' }], items: { type: 'boolean' }, minItems: 2, maxItems: 3 }, ['["x",true]', '["x",true,false]'], ['["x"]', '["x",true,false,true]']);
    expectLanguage({ type: 'array', maxItems: 0 }, ['[]'], ['[1]']);
  });

  it('json_object: any JSON object, nesting bounded', () => {
    const { gbnf } = compileAnyJsonObject({ param: 'response_format' });
    const g = new bindings.AddonGrammar(gbnf, { addonExports: bindings, rootRuleName: 'root' });
    for (const t of ['{}', '{"a":1}', '{"a":{"b":[1,"x",null,true]}}']) expect(g.isTextCompatible(t), t).to.equal(true);
    for (const t of ['[]', '"x"', '{"a":1', '{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}']) expect(g.isTextCompatible(t), t).to.equal(false);
  });

  it('unsupported keywords are refused by name, with their location', () => {
    for (const [schema, named] of [
      [{ type: 'array', uniqueItems: true }, "'uniqueItems' at /"],
      [{ type: 'object', properties: { n: { type: 'number', multipleOf: 2 } } }, "'multipleOf' at /properties/n"],
      [{ patternProperties: { '^a': {} } }, "'patternProperties'"],
      [{ if: {}, then: {} }, "'if'"],
      [{ not: { type: 'null' } }, "'not'"],
      [{ $defs: { unused: { dependentRequired: {} } } }, "'dependentRequired' at /$defs/unused"],
      [{ type: 'object', minProperties: 1 }, "'minProperties'"],
      [{ items: [{ type: 'string' }] }, "'items' as an array"],
      [{ type: 'number', exclusiveMinimum: true, minimum: 1 }, 'as a boolean (draft 4)'],
      [{ type: 'strings' }, "'type' at / must be"],
    ] as const) {
      expect(refusal(schema).message, JSON.stringify(schema)).to.include(named);
    }
  });

  it('bounds: depth, size and rule count are checked before any work, without recursion', () => {
    let deep: unknown = { type: 'string' };
    for (let i = 0; i < 100_000; i++) deep = { type: 'array', items: deep };
    expect(refusal(deep).message).to.include('nests deeper than');
    const wide = { type: 'object', properties: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`p${i}`, { type: 'string', description: 'x'.repeat(20) }])) };
    expect(refusal(wide).message).to.match(/larger than|more than/);
    const manyRules = { type: 'object', properties: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`p${i}`, { enum: [i] }])) };
    expect(refusal(manyRules, { maxRules: 50 }).message).to.include('more than 50 grammar rules');
    expect(refusal({ type: 'integer', minimum: 5, maximum: 4 }).message).to.include('allows no value');
    expect(refusal(null).message).to.include('must be an object');
  });
});
