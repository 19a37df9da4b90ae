/** The lifecycle checker itself: it must catch each kind of order violation, or its passes mean nothing. */
import { expect } from 'chai';
import { InferFluxError } from '../../src/errors.js';
import { checkedSink } from '../helpers/lifecycle-sink.js';

const meta = { model: 'm', promptTokens: 1, created: 0 };
const usage = { promptTokens: 1, completionTokens: 1, cachedTokens: 0 };

describe('lifecycle-checking sink (test helper)', () => {
  it('accepts start, text, choice ends, end', () => {
    const c = checkedSink(2);
    c.sink.onStart(meta);
    c.sink.onText(0, 'a');
    c.sink.onText(1, 'b');
    c.sink.onChoiceEnd(1, 'stop', 1);
    c.sink.onChoiceEnd(0, 'length', 1);
    c.sink.onEnd(usage);
    expect(c.violations).to.deep.equal([]);
    expect(c.calls).to.deep.equal(['start', 'text:0', 'text:1', 'choiceEnd:1:stop', 'choiceEnd:0:length', 'end']);
  });

  it('accepts an error at any point, even first', () => {
    const c = checkedSink(1);
    c.sink.onError(new InferFluxError('queue_full'));
    expect(c.violations).to.deep.equal([]);
  });

  it('flags text before start, text after its choice ended, a missing choice end, calls after the end, two errors', () => {
    const a = checkedSink(1);
    a.sink.onText(0, 'x');
    expect(a.violations[0]).to.match(/^onText: before onStart/);
    const b = checkedSink(1);
    b.sink.onStart(meta);
    b.sink.onChoiceEnd(0, 'stop', 1);
    b.sink.onText(0, 'late');
    expect(b.violations[0]).to.match(/^onText: after choice 0 ended/);
    const c = checkedSink(2);
    c.sink.onStart(meta);
    c.sink.onChoiceEnd(0, 'stop', 1);
    c.sink.onEnd(usage);
    expect(c.violations[0]).to.match(/^onEnd: only 1 of 2 choices ended/);
    const d = checkedSink(1);
    d.sink.onError(new InferFluxError('internal_error'));
    d.sink.onError(new InferFluxError('internal_error'));
    d.sink.onStart(meta);
    expect(d.violations).to.have.length(2);
    expect(d.violations[0]).to.match(/^onError: called after error/);
  });
});
