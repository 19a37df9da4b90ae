import { expect } from 'chai';
import { StopMatcher } from '../../src/runtime/text/stop-matcher.js';
import { TokenTextStream } from '../../src/runtime/text/token-text-stream.js';

describe('StopMatcher', () => {
  it('passes text through with no stop sequences', () => {
    expect(new StopMatcher([]).push('hello')).to.deep.equal({ emit: 'hello', stopped: false });
  });
  it('holds back a possible stop prefix until it is decided', () => {
    const m = new StopMatcher(['###']);
    expect(m.push('ab#')).to.deep.equal({ emit: 'ab', stopped: false });
    expect(m.push('#x')).to.deep.equal({ emit: '##x', stopped: false });
    expect(m.push('y##')).to.deep.equal({ emit: 'y', stopped: false });
    expect(m.push('#tail')).to.deep.equal({ emit: '', stopped: true });
  });
  it('stops at the earliest of several sequences', () => {
    const m = new StopMatcher(['END', 'x']);
    expect(m.push('abxEND')).to.deep.equal({ emit: 'ab', stopped: true });
    // Anthropic's `stop_sequence` reports which one it was.
    expect(m.matched).to.equal('x');
    const later = new StopMatcher(['x', 'END']);
    expect(later.push('abENDx').stopped).to.equal(true);
    expect(later.matched).to.equal('END');
  });
  it('reports no matched sequence until one stops the text', () => {
    const m = new StopMatcher(['###']);
    m.push('ab#');
    expect(m.matched).to.equal(null);
  });
  it('flushes held text when generation ends otherwise', () => {
    const m = new StopMatcher(['</s>']);
    expect(m.push('done</')).to.deep.equal({ emit: 'done', stopped: false });
    expect(m.flush()).to.equal('</');
  });
});

describe('TokenTextStream', () => {
  // Tokens are UTF-8 bytes here: the decoder sees whole byte runs, like a byte-fallback vocab.
  const detok = (tokens: readonly number[]) => Buffer.from(tokens).toString('utf8');
  it('holds a split multi-byte character until it completes', () => {
    const s = new TokenTextStream(detok);
    const bytes = [...Buffer.from('é€😀')];
    const out = bytes.map((b) => s.push(b));
    expect(out.join('')).to.equal('é€😀');
    expect(out.filter((x) => x === '').length).to.equal(bytes.length - 3);
  });
  it('releases invalid bytes after a bounded wait', () => {
    const s = new TokenTextStream(detok);
    const out = [0xff, 0xfe, 0xfd, 0xfc].map((b) => s.push(b));
    expect(out.slice(0, 3)).to.deep.equal(['', '', '']);
    expect(out[3]).to.contain('\uFFFD');
    expect(s.flush()).to.equal('');
  });
});
