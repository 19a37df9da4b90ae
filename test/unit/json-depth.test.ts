import { expect } from 'chai';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../src/http/json-depth.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');
const nested = (n: number, open = '[', close = ']') => open.repeat(n) + close.repeat(n);

describe('jsonDepthExceeds', () => {
  it('counts arrays and objects, mixed, up to the limit and one past it', () => {
    expect(jsonDepthExceeds(bytes(nested(64)), 64)).to.equal(false);
    expect(jsonDepthExceeds(bytes(nested(65)), 64)).to.equal(true);
    const objects = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    expect(jsonDepthExceeds(bytes(objects(64)), 64)).to.equal(false);
    expect(jsonDepthExceeds(bytes(objects(65)), 64)).to.equal(true);
    expect(jsonDepthExceeds(bytes('[{"a":[{"b":[]}]}]'), 4)).to.equal(true);
    expect(jsonDepthExceeds(bytes('[{"a":[{"b":1}]}, [[[]]]]'), 4)).to.equal(false);
    // Siblings do not add up: depth goes back down after each closes.
    expect(jsonDepthExceeds(bytes(nested(40).repeat(100)), 64)).to.equal(false);
  });

  it('ignores brackets inside strings, escaped quotes included, and multi-byte text', () => {
    const inString = JSON.stringify({ s: nested(1000) + '"\\' + nested(1000), t: 'ü€😀'.repeat(50) + '[[[' });
    expect(jsonDepthExceeds(bytes(inString), 2)).to.equal(false);
    expect(jsonDepthExceeds(bytes(`["\\"", ${nested(3)}]`), 3)).to.equal(true);
    expect(jsonDepthExceeds(bytes(`["\\\\", ${nested(2)}]`), 3)).to.equal(false);
  });

  it('refuses 10,000 levels, whatever follows, with the documented default', () => {
    expect(MAX_JSON_DEPTH).to.equal(64);
    expect(jsonDepthExceeds(bytes(nested(10_000)), MAX_JSON_DEPTH)).to.equal(true);
    expect(jsonDepthExceeds(bytes('{"messages":' + '['.repeat(10_000)), MAX_JSON_DEPTH)).to.equal(true);
  });
});
