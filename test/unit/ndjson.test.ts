/**
 * The NDJSON flush filler must keep every line parseable by line-splitting clients that parse
 * each line, empty ones included (the `ollama` npm client's `parseJSON`).
 */
import { expect } from 'chai';
import { NDJSON_FILLER, ndjsonFrame } from '../../src/http/ndjson.js';

/** The ollama client's reader: split on newlines, JSON.parse every complete line. */
function parseLikeOllama(bytes: string): { parsed: unknown[]; invalid: string[] } {
  const parsed: unknown[] = [];
  const invalid: string[] = [];
  const parts = bytes.split('\n');
  parts.pop();
  for (const p of parts) {
    try {
      parsed.push(JSON.parse(p));
    } catch {
      invalid.push(p);
    }
  }
  return { parsed, invalid };
}

describe('ndjson framing', () => {
  it('filler between lines leaves every line valid JSON for the ollama client', () => {
    const a = { data: { response: 'a', done: false } };
    const b = { data: { response: 'b\nc', done: true } };
    const bytes = ndjsonFrame(a) + NDJSON_FILLER + NDJSON_FILLER + ndjsonFrame(b);
    const { parsed, invalid } = parseLikeOllama(bytes);
    expect(invalid).to.deep.equal([]);
    expect(parsed).to.deep.equal([a.data, b.data]);
    expect(NDJSON_FILLER).to.not.include('\n');
  });
});
