import { expect } from 'chai';
import { GrammarCache } from '../../src/runtime/grammar/grammar-cache.js';
import { schemaHash } from '../../src/runtime/grammar/schema-hash.js';
import { outputValidator, validateOutput } from '../../src/runtime/grammar/validate-output.js';
import { InferFluxError } from '../../src/errors.js';

describe('grammar compile cache and output validation', () => {
  const schema = { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 9 }, b: { type: 'string', maxLength: 4 } }, required: ['a'] };

  it('hits by schema hash: key order does not matter, property order does', () => {
    const cache = new GrammarCache(8);
    const first = cache.forSchema(schema, 'p');
    expect(first.cached).to.equal(false);
    expect(first.compileMs).to.be.greaterThan(0);
    const reordered = { required: ['a'], properties: { a: { maximum: 9, minimum: 0, type: 'integer' }, b: { maxLength: 4, type: 'string' } }, type: 'object' };
    const second = cache.forSchema(reordered, 'p');
    expect(second).to.deep.include({ cached: true, compileMs: 0, gbnf: first.gbnf, hash: first.hash });
    expect(cache.hits).to.equal(1);
    const swapped = { ...schema, properties: { b: schema.properties.b, a: schema.properties.a } };
    expect(cache.forSchema(swapped, 'p').cached).to.equal(false);
    expect(schemaHash(swapped)).to.not.equal(first.hash);
    expect(cache.forJsonObject('p').cached).to.equal(false);
    expect(cache.forJsonObject('p').cached).to.equal(true);
  });

  it('is bounded: the least recently used grammar is evicted', () => {
    const cache = new GrammarCache(2);
    const s = (n: number) => ({ type: 'integer', minimum: 0, maximum: n });
    cache.forSchema(s(1), 'p');
    cache.forSchema(s(2), 'p');
    cache.forSchema(s(1), 'p'); // 1 is now most recent
    cache.forSchema(s(3), 'p'); // evicts 2
    expect(cache.size).to.equal(2);
    expect(cache.forSchema(s(1), 'p').cached).to.equal(true);
    expect(cache.forSchema(s(2), 'p').cached).to.equal(false);
  });

  it('does not cache refusals, and names the param', () => {
    const cache = new GrammarCache(2);
    for (let i = 0; i < 2; i++) {
      expect(() => cache.forSchema({ type: 'string', format: 'ipv4' }, 'response_format.json_schema.schema'))
        .to.throw(InferFluxError, "format 'ipv4'")
        .with.property('param', 'response_format.json_schema.schema');
    }
    expect(cache.size).to.equal(0);
  });

  it('validateOutput parses, validates with formats, and caches compiled validators', () => {
    expect(validateOutput(schema, '{"a":3,"b":"xy"}')).to.deep.equal({ valid: true, value: { a: 3, b: 'xy' } });
    expect(validateOutput(schema, '{"a":10}')).to.deep.include({ valid: false, reason: 'schema' });
    expect(validateOutput(schema, '{"a":')).to.deep.include({ valid: false, reason: 'not_json' });
    expect(validateOutput({ type: 'string', format: 'date' }, '"2023-02-29"')).to.deep.include({ valid: false });
    expect(validateOutput(null, '{"x":[1]}')).to.deep.include({ valid: true });
    expect(validateOutput(null, '[1]')).to.deep.include({ valid: false });
    expect(outputValidator(schema)).to.equal(outputValidator(JSON.parse(JSON.stringify(schema))));
    expect(() => outputValidator({ type: 'string', pattern: '[' }, 'response_format.json_schema.schema')).to.throw(InferFluxError, 'not valid');
  });
});
