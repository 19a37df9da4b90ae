import { expect } from 'chai';
import { EmbeddingDispatch } from '../../src/actors/embedding/dispatch.js';
import { poolingTypeOf, supportsEmbeddings } from '../../src/generation/capabilities.js';

describe('embedding pool dispatch', () => {
  it('runs on idle workers, queues up to the bound, refuses beyond it, and hands the queue on in order', () => {
    const d = new EmbeddingDispatch<string>(2);
    expect(d.workerReady(0)).to.equal(undefined);
    expect(d.workerReady(1)).to.equal(undefined);
    expect(d.submit('a')).to.deep.equal({ kind: 'run', worker: 0 });
    expect(d.submit('b')).to.deep.equal({ kind: 'run', worker: 1 });
    expect(d.submit('c')).to.deep.equal({ kind: 'queued' });
    expect(d.submit('d')).to.deep.equal({ kind: 'queued' });
    expect(d.submit('e')).to.deep.equal({ kind: 'full' });
    expect(d.queued).to.equal(2);
    expect(d.finished(1)).to.equal('c');
    expect(d.finished(1)).to.equal('d');
    expect(d.finished(1)).to.equal(undefined);
    expect(d.submit('f')).to.deep.equal({ kind: 'run', worker: 1 });
  });

  it('a withdrawn job leaves the queue; a lost worker gives back its job and takes no more', () => {
    const d = new EmbeddingDispatch<string>(4);
    d.workerReady(0);
    d.submit('a');
    d.submit('b');
    d.submit('c');
    expect(d.withdraw('b')).to.equal(true);
    expect(d.withdraw('a')).to.equal(false); // running: it finishes
    expect(d.workerLost(0)).to.equal('a');
    expect(d.workers).to.equal(0);
    expect(d.submit('d')).to.deep.equal({ kind: 'queued' });
    expect(d.drain()).to.deep.equal(['c', 'd']);
    expect(d.queued).to.equal(0);
  });

  it('max_queue 0 refuses whatever finds no idle worker', () => {
    const d = new EmbeddingDispatch<string>(0);
    d.workerReady(0);
    expect(d.submit('a').kind).to.equal('run');
    expect(d.submit('b').kind).to.equal('full');
  });
});

describe('embeddings capability', () => {
  const meta = (pooling?: unknown) => ({ 'general.architecture': 'llama', ...(pooling === undefined ? {} : { 'llama.pooling_type': pooling }) });

  it('auto: mean, cls and last pooling embed; none, rank and no pooling key do not', () => {
    expect([1, 2, 3, 1n].map((p) => supportsEmbeddings({ embeddings: 'auto', metadata: meta(p) }))).to.deep.equal([true, true, true, true]);
    expect([0, 4, 9, 'mean', undefined].map((p) => supportsEmbeddings({ embeddings: 'auto', metadata: meta(p) }))).to.deep.equal([false, false, false, false, false]);
    expect(poolingTypeOf(meta(2))).to.equal('cls');
    expect(poolingTypeOf({ 'llama.pooling_type': 1 })).to.equal(null); // no architecture: no key to read
  });

  it('the model entry overrides the file either way', () => {
    expect(supportsEmbeddings({ embeddings: true, metadata: meta() })).to.equal(true);
    expect(supportsEmbeddings({ embeddings: false, metadata: meta(1) })).to.equal(false);
  });
});
