import { expect } from 'chai';
import { EngineCore, SOLO_PREFILL_DEPTH, type Emission, type SlotSampler } from '../../src/actors/engine/core.js';
import type { AdmitBody, EngineSampling, RequestId } from '../../src/actors/protocol.js';

const EOG = 0;
/** Token t renders as the letter at index t-1 ('a' = 1); EOG (0) renders empty. */
const detok = (tokens: readonly number[]): string => tokens.map((t) => (t === EOG ? '' : String.fromCharCode(96 + t))).join('');

function makeCore(opts: Partial<{ sequences: number; contextSize: number; batchSize: number; prefillChunk: number; prefillChunkDecoding: number }> = {}) {
  return new EngineCore<string>({
    sequences: opts.sequences ?? 4,
    contextSize: opts.contextSize ?? 64,
    batchSize: opts.batchSize ?? 32,
    prefillChunk: opts.prefillChunk ?? 8,
    prefillChunkDecoding: opts.prefillChunkDecoding,
    detokenize: (t) => detok(t),
    isEog: (t) => t === EOG,
  });
}

function sampling(over: Partial<EngineSampling> = {}): EngineSampling {
  return {
    maxTokens: 16, temperature: 0, topP: 1, topK: 0, minP: 0, seed: 1, stop: [],
    presencePenalty: 0, frequencyPenalty: 0, repeatPenalty: 1, logitBias: [],
    ignoreEos: false, minTokens: 0, logprobs: null, grammar: null, ...over,
  };
}

function req(id: string, promptLen: number, over: Partial<EngineSampling> = {}): AdmitBody {
  return { id: id as RequestId, model: 'm', tokens: Array.from({ length: promptLen }, (_, i) => (i % 20) + 1), sampling: sampling(over), enqueuedAt: 0, priority: 0, tenant: 'default', prefix: [], adapter: null };
}

class FakeSampler implements SlotSampler {
  bans: boolean[] = [];
  disposed = false;
  setEogBan(b: boolean): void { this.bans.push(b); }
  dispose(): void { this.disposed = true; }
}

function texts(ems: Emission<string>[], ref: string): string {
  return ems.filter((e) => e.kind === 'text' && e.ref === ref).map((e) => (e as { text: string }).text).join('');
}

describe('EngineCore', () => {
  it('prefills in chunks and puts every running sequence in each step', () => {
    const core = makeCore({ prefillChunk: 8, batchSize: 32 });
    core.admit(req('a', 3), 'A', new FakeSampler(), 0);
    let plan = core.plan(1);
    expect(plan.items).to.deep.equal([{ slot: 0, sequenceId: 0, position: 0, tokens: Uint32Array.of(1, 2, 3), wantLogits: true }]);
    let ems = core.apply(plan, [5], 2);
    expect(ems.map((e) => e.kind)).to.deep.equal(['started', 'text']);
    expect(texts(ems, 'A')).to.equal('e');

    // b arrives with a 20-token prompt: a decodes 1 token, b prefills a chunk of 8 in the same step
    core.admit(req('b', 20), 'B', new FakeSampler(), 3);
    plan = core.plan(4);
    expect(plan.items.map((i) => [i.slot, i.position, i.tokens.length, i.wantLogits])).to.deep.equal([
      [0, 3, 1, true],
      [1, 0, 8, false],
    ]);
    ems = core.apply(plan, [6, -1], 5);
    expect(texts(ems, 'A')).to.equal('f');
    plan = core.plan(6);
    expect(plan.items.map((i) => [i.slot, i.position, i.tokens.length, i.wantLogits])).to.deep.equal([
      [0, 4, 1, true],
      [1, 8, 8, false],
    ]);
    core.apply(plan, [7, -1], 7);
    plan = core.plan(8);
    expect(plan.items.map((i) => [i.slot, i.position, i.tokens.length, i.wantLogits])).to.deep.equal([
      [0, 5, 1, true],
      [1, 16, 4, true],
    ]);
  });

  it('respects the batch budget: decodes first, prefill gets what is left', () => {
    const core = makeCore({ batchSize: 4, prefillChunk: 8 });
    core.admit(req('a', 2), 'A', new FakeSampler(), 0);
    core.apply(core.plan(0), [3], 0);
    core.admit(req('b', 10), 'B', new FakeSampler(), 0);
    const plan = core.plan(1);
    expect(plan.tokens).to.equal(4);
    expect(plan.items.map((i) => i.tokens.length)).to.deep.equal([1, 3]);
  });

  it('evaluates a prompt chunk written past SOLO_PREFILL_DEPTH without other prompts in its step', () => {
    const core = makeCore({ contextSize: 1024, batchSize: 512, prefillChunk: 256 });
    core.admit(req('a', 600, { maxTokens: 50 }), 'A', new FakeSampler(), 0);
    core.admit(req('b', 600, { maxTokens: 50 }), 'B', new FakeSampler(), 0);
    const chunks = (p: ReturnType<typeof core.plan>) => p.items.map((i) => [i.slot, i.position, i.tokens.length]);
    // From the start of their prompts, both share a step.
    let plan = core.plan(1);
    expect(chunks(plan)).to.deep.equal([[0, 0, 256], [1, 0, 256]]);
    core.apply(plan, [-1, -1], 1);
    core.admit(req('c', 10, { maxTokens: 50 }), 'C', new FakeSampler(), 1);
    // Past it, each goes alone, in arrival order; the fresh short prompt waits its turn.
    expect(SOLO_PREFILL_DEPTH).to.equal(256);
    plan = core.plan(2);
    expect(chunks(plan)).to.deep.equal([[0, 256, 256]]);
    core.apply(plan, [-1], 2);
    plan = core.plan(3);
    expect(chunks(plan)).to.deep.equal([[0, 512, 88]]);
    core.apply(plan, [5], 3);
    plan = core.plan(4);
    expect(chunks(plan), 'a decodes beside b\'s deep chunk').to.deep.equal([[0, 600, 1], [1, 256, 256]]);
    core.apply(plan, [5, -1], 4);
    plan = core.plan(5);
    expect(chunks(plan)).to.deep.equal([[0, 601, 1], [1, 512, 88]]);
    core.apply(plan, [5, 5], 5);
    plan = core.plan(6);
    expect(chunks(plan)).to.deep.equal([[0, 602, 1], [1, 600, 1], [2, 0, 10]]);
  });

  it('finishes on EOG with reason stop, and on max_tokens with reason length', () => {
    const core = makeCore();
    core.admit(req('a', 2, { maxTokens: 3 }), 'A', new FakeSampler(), 0);
    core.admit(req('b', 2), 'B', new FakeSampler(), 0);
    let ems = core.apply(core.plan(0), [1, 1], 1);
    ems = ems.concat(core.apply(core.plan(1), [2, EOG], 2));
    const doneB = ems.find((e) => e.kind === 'done' && e.ref === 'B');
    expect(doneB).to.include({ reason: 'stop' });
    ems = core.apply(core.plan(2), [3], 3);
    const doneA = ems.find((e) => e.kind === 'done');
    expect(doneA).to.deep.include({ reason: 'length', ref: 'A' });
    expect((doneA as { stats: { completionTokens: number } }).stats.completionTokens).to.equal(3);
    expect(core.active).to.equal(0);
  });

  it('stops at a stop string without leaking any part of it', () => {
    const core = makeCore();
    core.admit(req('a', 1, { stop: ['cd'] }), 'A', new FakeSampler(), 0);
    const out: Emission<string>[] = [];
    for (const t of [1, 2, 3, 4, 5]) {
      out.push(...core.apply(core.plan(0), [t], 0));
      if (core.active === 0) break;
    }
    expect(texts(out, 'A')).to.equal('ab');
    expect(out.at(-1)).to.deep.include({ kind: 'done', reason: 'stop' });
  });

  it('bans EOG until min_tokens, then lifts the ban', () => {
    const core = makeCore();
    const s = new FakeSampler();
    core.admit(req('a', 1, { minTokens: 2 }), 'A', s, 0);
    core.apply(core.plan(0), [1], 0);
    core.apply(core.plan(0), [2], 0);
    expect(s.bans).to.deep.equal([true, false]);
  });

  it('ignore_eos keeps the ban for the whole request', () => {
    const core = makeCore();
    const s = new FakeSampler();
    core.admit(req('a', 1, { ignoreEos: true, maxTokens: 3 }), 'A', s, 0);
    for (let i = 0; i < 3; i++) core.apply(core.plan(0), [1], 0);
    expect(s.bans).to.deep.equal([true]);
    expect(core.active).to.equal(0);
  });

  it('skips paused sequences and reaps cancelled ones without another batch', () => {
    const core = makeCore();
    const s = new FakeSampler();
    core.admit(req('a', 1), 'A', s, 0);
    core.admit(req('b', 1), 'B', new FakeSampler(), 0);
    core.apply(core.plan(0), [1, 1], 0);
    core.setPaused('a' as RequestId, true);
    expect(core.plan(0).items.map((i) => i.slot)).to.deep.equal([1]);
    core.setPaused('a' as RequestId, false);
    core.cancel('a' as RequestId);
    expect(core.plan(0).items.map((i) => i.slot)).to.deep.equal([1]);
    const reaped = core.reapCancelled(1);
    expect(reaped).to.have.length(1);
    expect(reaped[0]).to.deep.include({ kind: 'done', reason: 'cancelled', ref: 'A', seq: 0 });
    expect(s.disposed).to.equal(true);
    expect(core.status().cancelled).to.equal(1);
  });

  it('ends with length when the context is full', () => {
    const core = makeCore({ contextSize: 4 });
    core.admit(req('a', 2, { maxTokens: 100 }), 'A', new FakeSampler(), 0);
    core.apply(core.plan(0), [1], 0);
    const ems = core.apply(core.plan(0), [2], 0);
    expect(ems.at(-1)).to.deep.include({ kind: 'done', reason: 'length' });
  });

  it('refuses admission when every sequence is busy', () => {
    const core = makeCore({ sequences: 1 });
    expect(core.admit(req('a', 1), 'A', new FakeSampler(), 0)).to.deep.equal({ seq: 0, keep: 0 });
    expect(core.admit(req('b', 1), 'B', new FakeSampler(), 0)).to.equal(null);
  });

  it('reuses the free sequence holding the longest prefix and prefills only the rest', () => {
    const core = makeCore({ sequences: 2, prefillChunk: 64 });
    const first = req('a', 20, { maxTokens: 2 });
    core.admit(first, 'A', new FakeSampler(), 0);
    core.apply(core.plan(0), [7], 0);
    core.apply(core.plan(0), [8], 0); // done: length 2; tokens fed: prompt + 7
    expect(core.active).to.equal(0);
    expect(core.residentTokens(0)).to.deep.equal([...first.tokens, 7]);

    // The follow-up turn: the old prompt, the model's answer, then new tokens.
    const follow: AdmitBody = { ...req('b', 1), tokens: [...first.tokens, 7, 8, 3, 4] };
    expect(core.admit(follow, 'B', new FakeSampler(), 1)).to.deep.equal({ seq: 0, keep: 21 });
    const plan = core.plan(2);
    expect(plan.items.map((i) => [i.sequenceId, i.position, Array.from(i.tokens)])).to.deep.equal([[0, 21, [8, 3, 4]]]);
    const ems = core.apply(plan, [5], 3);
    core.cancel('b' as RequestId);
    const done = core.reapCancelled(4)[0] as { stats: { cachedTokens: number; promptTokens: number } };
    expect(done.stats).to.include({ cachedTokens: 21, promptTokens: 24 });
    expect(ems.map((e) => e.kind)).to.deep.equal(['started', 'text']);
  });

  it('does not overwrite a held prompt for a short shared prefix (a BOS token): an empty sequence, then the idlest, is taken', () => {
    const core = makeCore({ sequences: 3, prefillChunk: 64 });
    const finish = (id: string, tokens: number[], now: number): number => {
      const seq = core.admit({ ...req(id, 1, { maxTokens: 1 }), tokens }, id, new FakeSampler(), now)!.seq;
      while (core.active > 0) core.apply(core.plan(now), [9], now);
      return seq;
    };
    const bos = 1;
    const a = finish('a', [bos, ...Array.from({ length: 40 }, (_, i) => 100 + i)], 0);
    // Shares only the BOS token with a's prompt: a's sequence keeps it.
    const b = finish('b', [bos, ...Array.from({ length: 40 }, (_, i) => 200 + i)], 1);
    expect(b).to.not.equal(a);
    const c = finish('c', [bos, ...Array.from({ length: 40 }, (_, i) => 300 + i)], 2);
    expect(c).to.not.be.oneOf([a, b]);
    // Every sequence holds a prompt now: the least recently used one (a's) is overwritten, BOS kept.
    expect(core.preview([bos, 5, 6, 7], '')).to.deep.include({ seq: a, keep: 1 });
    // A prefix that long is worth it, and so is a short prompt matched whole.
    expect(core.preview([bos, ...Array.from({ length: 20 }, (_, i) => 200 + i), 1, 2], '')).to.deep.include({ seq: b, keep: 21 });
    expect(core.preview([bos, 300, 301], '')).to.deep.include({ seq: c, keep: 2 });
    // What an idle worker saves ahead: the sequence a prompt sharing nothing would take, a's.
    const v = core.nextVictim()!;
    expect(v.seq).to.equal(a);
    expect(core.preview([7, 8, 9], '')!.seq).to.equal(v.seq);
    expect(v.resident.slice(0, v.residentPrompt)).to.deep.equal([bos, ...Array.from({ length: 40 }, (_, i) => 100 + i)]);
    // A busy sequence is never one.
    core.admit({ ...req('d', 1, { maxTokens: 5 }), tokens: [2, 3] }, 'd', new FakeSampler(), 3);
    expect(core.nextVictim()!.seq).to.not.equal(a);
    // Nor the sequence used last (its conversation may come back for its answer): with one, none.
    const one = makeCore({ sequences: 1, prefillChunk: 64 });
    expect(one.nextVictim(), 'never used').to.equal(null);
    one.admit({ ...req('e', 1, { maxTokens: 1 }), tokens: [bos, 5, 6] }, 'e', new FakeSampler(), 0);
    while (one.active > 0) one.apply(one.plan(0), [9], 0);
    expect(one.nextVictim()).to.equal(null);
  });

  it('finds the running prefill a request sharing its prompt start should wait for, then the sequence to copy it from', () => {
    const core = makeCore({ sequences: 4, contextSize: 512, prefillChunk: 64, batchSize: 256 });
    const system = Array.from({ length: 100 }, (_, i) => 500 + i);
    const body = (id: string, tail: number[]): AdmitBody => ({ ...req(id, 1, { maxTokens: 20 }), tokens: [1, ...system, ...tail] });
    const a = body('a', [7, 8]);
    const b = body('b', [9, 10, 11]);
    // Nothing runs yet: no reason to wait, nor to ask the cache tiers (that hashes the prompt).
    const unasked = (): number => expect.fail('the cache tiers were asked with no prefill to wait for');
    expect(core.prefixPending(b.tokens, '', unasked)).to.equal(false);
    const seqA = core.admit(a, 'a', new FakeSampler(), 0)!.seq;
    // a prefills the shared 101 tokens 64 per step: b waits until they are all in a's KV.
    expect(core.prefixPending(b.tokens, '')).to.equal(true);
    expect(core.prefixPending(b.tokens, '', () => 101), 'the cache tiers hold it already').to.equal(false);
    expect(core.copySource(b.tokens, 3, '')).to.equal(null);
    core.apply(core.plan(0), [], 0);
    expect(core.copySource(b.tokens, 3, '')).to.deep.equal({ seq: seqA, length: 64, free: false });
    expect(core.prefixPending(b.tokens, '')).to.equal(true);
    const second = core.plan(1);
    core.apply(second, second.items.map(() => 42), 1); // a's prompt done, first token sampled
    expect(core.prefixPending(b.tokens, '', unasked)).to.equal(false);
    expect(core.copySource(b.tokens, 3, '')).to.deep.equal({ seq: seqA, length: 101, free: false });
    // Too little in common (under MIN_COPY_GAIN_TOKENS more than nothing): neither waits nor copies much.
    const c = core.admit({ ...req('c', 1, { maxTokens: 5 }), tokens: [1, 2, 3, ...Array.from({ length: 80 }, (_, i) => 900 + i)] }, 'c', new FakeSampler(), 2)!;
    expect(core.prefixPending([1, 2, 3, 4, 5, ...Array.from({ length: 60 }, () => 7)], '')).to.equal(false);
    // A request never copies from its own sequence, nor what a prompt has not prefilled yet (c's);
    // cancelled or suspending requests are no source.
    expect(core.copySource(b.tokens, seqA, '')).to.equal(null);
    expect(c.keep).to.equal(0);
    core.cancel('a' as RequestId);
    expect(core.copySource(b.tokens, 3, '')).to.equal(null);
    // Once a's request ended, its free sequence keeps the prompt: a source too.
    core.reapCancelled(3);
    expect(core.copySource(b.tokens, 3, '')).to.deep.equal({ seq: seqA, length: 101, free: true });
    // A long prompt cannot take all of it: its last token is always evaluated.
    expect(core.copySource([1, ...system], 3, '')).to.deep.equal({ seq: seqA, length: 100, free: true });
    // Being saved or loaded: not a source.
    core.lock(seqA);
    expect(core.copySource(b.tokens, 3, '')).to.equal(null);
    expect(core.prefixPending(b.tokens, ''), 'nothing to wait for').to.equal(false);
  });

  it('cache salts: KV is reused, copied and waited for only between requests of the same salt', () => {
    const core = makeCore({ sequences: 3, contextSize: 512, prefillChunk: 64, batchSize: 256 });
    const system = Array.from({ length: 100 }, (_, i) => 500 + i);
    const body = (id: string, salt: string | undefined, tail: number[]): AdmitBody => ({ ...req(id, 1, { maxTokens: 1 }), tokens: [1, ...system, ...tail], ...(salt === undefined ? {} : { cacheSalt: salt }) });
    const a = body('a', 'tenant=a', [7, 8]);
    const seqA = core.admit(a, 'a', new FakeSampler(), 0)!.seq;
    const b = body('b', 'tenant=b', [9, 10]);
    // a prefills the shared prompt: the same salt waits for it, another salt (or none) does not.
    expect(core.prefixPending(body('a2', 'tenant=a', [9]).tokens, 'tenant=a')).to.equal(true);
    expect(core.prefixPending(b.tokens, 'tenant=b')).to.equal(false);
    expect(core.prefixPending(b.tokens, '')).to.equal(false);
    while (core.active > 0) core.apply(core.plan(1), [9], 1);
    expect(core.residentSaltOf(seqA)).to.equal('tenant=a');
    // a's free sequence holds the prompt: a source and a reuse for its salt only.
    expect(core.copySource(b.tokens, 2, 'tenant=a')).to.deep.include({ seq: seqA, length: 101 });
    expect(core.copySource(b.tokens, 2, 'tenant=b')).to.equal(null);
    expect(core.preview(b.tokens, 'tenant=a')).to.deep.include({ seq: seqA, keep: 101, residentSalt: 'tenant=a' });
    const other = core.preview(b.tokens, 'tenant=b')!;
    expect(other.keep).to.equal(0);
    // Admitted under another salt, nothing of a's is kept, and the sequence now holds b's salt.
    const admittedB = core.admit(b, 'b', new FakeSampler(), 2)!;
    expect(admittedB.keep).to.equal(0);
    expect(core.residentSaltOf(admittedB.seq)).to.equal('tenant=b');
    expect(core.residentSaltOf(seqA)).to.equal('tenant=a');
  });

  it('packs new requests next to busy sequences and plans a step in sequence order (one llama.cpp micro-batch per run of ids)', () => {
    const core = makeCore({ sequences: 8, prefillChunk: 64, batchSize: 64 });
    const start = (id: string, now: number): number => core.admit(req(id, 20, { maxTokens: 50 }), id, new FakeSampler(), now)!.seq;
    const ids = Array.from({ length: 8 }, (_, k) => `r${k}`);
    ids.forEach((id, k) => expect(start(id, k)).to.equal(k));
    // Finish all but r2, sequence 6 first: 6 is the idlest, 2 stays busy.
    for (const k of [6, 0, 1, 3, 4, 5, 7]) {
      core.cancel(ids[k] as RequestId);
      core.reapCancelled(k);
      core.apply({ items: [], tokens: 0 }, [], k); // one engine step each: distinct ages
    }
    // Not the idlest (6): next to the busy sequence, so both decode in one micro-batch.
    expect(start('a', 20)).to.be.oneOf([1, 3]);

    // A prompt admitted into a lower sequence than the streams decoding is still planned in order.
    const small = makeCore({ sequences: 3, prefillChunk: 64, batchSize: 64 });
    for (const id of ['x', 'y', 'w']) small.admit(req(id, 4, { maxTokens: 50 }), id, new FakeSampler(), 0);
    small.cancel('x' as RequestId);
    small.reapCancelled(0);
    const first = small.plan(0);
    small.apply(first, first.items.map(() => 5), 0); // y and w decode from now on
    expect(small.admit(req('z', 4, { maxTokens: 50 }), 'z', new FakeSampler(), 1)!.seq).to.equal(0);
    const plan = small.plan(1);
    expect(plan.items.map((i) => [i.slot, i.tokens.length])).to.deep.equal([[0, 4], [1, 1], [2, 1]]);
  });

  it('always evaluates at least the last prompt token, even for an identical prompt', () => {
    const core = makeCore({ sequences: 1 });
    const r = req('a', 6, { maxTokens: 1 });
    core.admit(r, 'A', new FakeSampler(), 0);
    core.apply(core.plan(0), [3], 0);
    expect(core.admit({ ...r, id: 'b' as RequestId }, 'B', new FakeSampler(), 0)).to.deep.equal({ seq: 0, keep: 5 });
    expect(core.plan(0).items.map((i) => [i.position, i.tokens.length, i.wantLogits])).to.deep.equal([[5, 1, true]]);
  });

  it('limits prompt tokens per step while streams decode (prefillChunkDecoding)', () => {
    const core = makeCore({ prefillChunk: 8, prefillChunkDecoding: 3, batchSize: 32 });
    core.admit(req('a', 2), 'A', new FakeSampler(), 0);
    expect(core.plan(0).tokens).to.equal(2); // nothing decoding yet: a full chunk
    core.apply(core.plan(0), [3], 0);
    core.admit(req('b', 10), 'B', new FakeSampler(), 0);
    core.admit(req('c', 10), 'C', new FakeSampler(), 0);
    const plan = core.plan(1);
    expect(plan.items.map((i) => [i.slot, i.tokens.length])).to.deep.equal([[0, 1], [1, 3]]);
  });
});
