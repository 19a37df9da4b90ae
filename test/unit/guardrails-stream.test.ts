/**
 * Output guardrails on streamed text: the per-choice filter (terms and PII spanning chunk
 * boundaries, hold-back, redaction) and the TokenSink wrapper (lifecycle, deny once, streamed and
 * final text redacted the same), plus the engine's prompt checks and live policy updates.
 */
import { expect } from 'chai';
import type { FinishReason, StartMeta, TokenSink, Usage } from '../../src/generation/contract.js';
import type { InferFluxError } from '../../src/errors.js';
import { Metrics } from '../../src/metrics.js';
import { Blocklist, normalise } from '../../src/policy/guardrails/blocklist.js';
import { GuardrailEngine, denialAuditEvent, guardrailDenied } from '../../src/policy/guardrails/guardrail-engine.js';
import { guardSink } from '../../src/policy/guardrails/guarded-sink.js';
import { OutputFilter, type OutputRules } from '../../src/policy/guardrails/output-filter.js';
import { findPii, PII_KINDS, redact } from '../../src/policy/guardrails/pii.js';
import { PolicyService } from '../../src/policy/policy-service.js';
import type { GuardrailPolicy, PiiKind, PolicyDocument } from '../../src/policy/types.js';

function rules(terms: string[], action: OutputRules['piiAction'] = 'off', kinds: PiiKind[] = [...PII_KINDS]): OutputRules {
  return { blocklist: new Blocklist(terms), piiAction: action, piiKinds: new Set(action === 'off' ? [] : kinds) };
}

/** Feeds chunks; returns the released text, or the denial reason. */
function run(r: OutputRules, chunks: string[]): { text: string } | { deny: string } {
  const f = new OutputFilter(r);
  let text = '';
  for (const [i, c] of chunks.entries()) {
    const step = f.push(c, false);
    if (step.kind === 'deny') return { deny: step.reason };
    text += step.text;
    if (i === chunks.length - 1) {
      const end = f.push('', true);
      if (end.kind === 'deny') return { deny: end.reason };
      text += end.text;
    }
  }
  return { text };
}

/** A seeded xorshift: `rnd(n)` is a whole number in [0, n), the same sequence for the same seed. */
function randomInts(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/** Every split of `text` into chunks of `size` characters. */
function chunked(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

describe('guardrails: output filter', () => {
  it('streams plain prose with PII redaction on holding back only the word being written', () => {
    const f = new OutputFilter(rules([], 'redact'));
    const out = ['The quick ', 'brown fox ', 'jumps over'].map((c) => f.push(c));
    expect(out.map((o) => (o.kind === 'emit' ? o.text : 'DENY'))).to.deep.equal(['The quick ', 'brown fox ', 'jumps ']);
    expect(f.push('', true)).to.deep.include({ kind: 'emit', text: 'over' });
  });

  it('denies a term split across chunks at every chunk size', () => {
    for (let size = 1; size <= 8; size++) {
      expect(run(rules(['forbidden']), chunked('this is a forbidden word, really', size)), `size ${size}`).to.deep.equal({ deny: 'blocklist' });
    }
  });

  it('passes text through unchanged when nothing matches, whatever the chunking', () => {
    const text = 'the forbiddenness of it; secretary notes; all fine here.';
    for (let size = 1; size <= 7; size++) {
      expect(run(rules(['forbidden', 'secret'], 'redact'), chunked(text, size)), `size ${size}`).to.deep.equal({ text });
    }
  });

  it('a whole-word term at the very end is denied when the stream ends', () => {
    expect(run(rules(['secret']), ['the ', 'secr', 'et'])).to.deep.equal({ deny: 'blocklist' });
  });

  it('holds back only a tail that could still become a term', () => {
    const f = new OutputFilter(rules(['abcde']));
    // Nothing here can start "abcde": everything is released at once.
    expect(f.push('0123456789', false)).to.deep.equal({ kind: 'emit', text: '0123456789', redacted: [] });
    // "ab" may become the term: held until the next characters decide.
    expect(f.push('xy ab', false)).to.deep.equal({ kind: 'emit', text: 'xy ', redacted: [] });
    expect(f.push('zz', false)).to.deep.equal({ kind: 'emit', text: 'abzz', redacted: [] });
    expect(new OutputFilter(rules(['abcde'])).push('ABCDE', true)).to.deep.equal({ kind: 'deny', reason: 'blocklist' });
  });

  it('holds a tail for a whole-word term only where a word can start', () => {
    const b = new Blocklist(['classified', 'top secret']);
    expect(b.holdBack('abc')).to.equal(0); // `c` inside a word cannot start "classified"
    expect(b.holdBack('a c')).to.equal(1);
    expect(b.holdBack('cla')).to.equal(3);
    expect(b.holdBack('(cl')).to.equal(2);
    expect(b.holdBack('the top sec')).to.equal(7);
    expect(b.holdBack('stop sec')).to.equal(0);
    // An open start (`*coin`) matches inside words, so there the tail is held.
    expect(new Blocklist(['*coin']).holdBack('bitco')).to.equal(2);
  });

  it('redacts PII split across chunks, identically for every chunk size', () => {
    const text = 'Reach me at jane.doe@example.com or +1 415 555 2671; card 4111 1111 1111 1111. Thanks!';
    const want = 'Reach me at [REDACTED:email] or [REDACTED:phone]; card [REDACTED:credit_card]. Thanks!';
    for (const size of [1, 2, 3, 5, 8, 13, 200]) {
      expect(run(rules([], 'redact'), chunked(text, size)), `size ${size}`).to.deep.equal({ text: want });
    }
  });

  it('redacts a secret longer than the hold-back window', () => {
    const key = 'sk-' + 'aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kL9nP2rS5uV8xA1cD4fG7iK0'.repeat(2);
    const text = `here is the key ${key} do not share`;
    expect(run(rules([], 'redact'), chunked(text, 4))).to.deep.equal({ text: 'here is the key [REDACTED:secret] do not share' });
  });

  it('blocks on PII with action block, naming the kind', () => {
    expect(run(rules([], 'block'), chunked('write to bob@corp.example now', 3))).to.deep.equal({ deny: 'pii_email' });
  });

  it('releases a number as soon as the character after it shows it is no phone or card', () => {
    const f = new OutputFilter(rules([], 'redact'));
    expect(f.push('In 2024 we')).to.deep.include({ text: 'In 2024 ' });
    expect(f.push(' sold 3')).to.deep.include({ text: 'we sold ' });
    expect(f.push(' cats')).to.deep.include({ text: '3 ' });
    // A spaced number may still become a phone: held until it cannot.
    expect(f.push(' and 415 555')).to.deep.include({ text: 'cats and ' });
    expect(f.push(' 2671 ok')).to.deep.include({ text: '[REDACTED:phone] ' });
  });

  it('keeps the name of a secret with its value, and never releases part of a match to finish a word', () => {
    for (const size of [1, 2, 5]) {
      // The value alone is no secret: releasing `token: ` before the closing quote leaked it.
      expect(run(rules([], 'redact'), chunked('x token: "a1B2c3D4e5F6g7H8i9" on', size))).to.deep.equal({ text: 'x token: "[REDACTED:secret]" on' });
      // The phone ends inside the word `12:30`; cutting at that word's start used to split the match.
      expect(run(rules([], 'redact'), chunked('+1 415 555 2671 12:30 end', size))).to.deep.equal({ text: '[REDACTED:phone]:30 end' });
    }
  });

  it('releases a long run that can no longer become an email or a key, without waiting for a space', () => {
    const f = new OutputFilter(rules([], 'redact'));
    const run65 = 'pgv'.repeat(22); // 66 letters: past an email local part's 64
    expect(f.push('vag' + run65.slice(0, 58))).to.deep.include({ text: '' });
    expect(f.push(run65.slice(58))).to.deep.include({ text: 'vag' + run65 });
    // A run that starts like a vendor key is held to the end, however long.
    const g = new OutputFilter(rules([], 'redact'));
    expect(g.push('ghp_' + 'x'.repeat(100))).to.deep.include({ text: '' });
    // A secret's name is held while it is written, released once it cannot be one.
    const h = new OutputFilter(rules([], 'redact', ['secret']));
    expect(h.push('see passw')).to.deep.include({ text: 'see ' });
    expect(h.push('ing')).to.deep.include({ text: 'passwing' });
  });

  it('streams exactly what whole-text redaction gives, for random PII-laden text at every chunk size', () => {
    const fragments = [
      'the', 'cat', 'sat', 'on', 'mat', '2024', '17', '3.5', '(see', 'note)', 'x-ray', '-', '+', '(', '12:30', 'v1.2.3',
      'jane.doe@example.com', 'a@b.io', '+1 415 555 2671', '(555) 123-4567', '555-123-4567', '020 7946 0958',
      '4111 1111 1111 1111', '5500-0000-0000-0004', '4111111111111111', 'DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432',
      'sk-proj-aB3dE6gH9jK2mN5pQ8sT1vW', 'api_key=Zx9Qw8Er7Ty6Ui5Op4As', 'token: "a1B2c3D4e5F6g7H8i9"', 'Bearer eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJlMTIz',
      '-----BEGIN RSA PRIVATE KEY-----', 'AKIAIOSFODNN7EXAMPLE', 'my_token=Ab12Cd34Ef56Gh78Ij90', 'passw', 'https://x.io/u/a.b@c.de',
      'pgv'.repeat(23), 'x.' + 'ab'.repeat(40) + '@mail.example.org', 'ghp_' + 'aB3'.repeat(12), 'GB82', 'v2.eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJlMTIz',
    ];
    const rnd = randomInts(7);
    for (let t = 0; t < 150; t++) {
      const words = Array.from({ length: 4 + rnd(14) }, () => fragments[rnd(fragments.length)]!);
      const text = words.join([' ', ', ', '\n'][rnd(3)]!) + ['', '.', ' end'][rnd(3)];
      const want = redact(text, findPii(text, new Set(PII_KINDS)));
      for (const size of [1, 2, 3, 4, 7, 11, 1000]) {
        expect(run(rules([], 'redact'), chunked(text, size)), `size ${size}: ${JSON.stringify(text)}`).to.deep.equal({ text: want });
      }
    }
  });

  it('denies exactly when the whole text holds a term, for random text at every chunk size', () => {
    const terms = ['classified', 'top secret', 'confidential*', '*coin', 'launch codes', 'x-ray'];
    const words = ['the', 'class', 'classified', 'declassified', 'top', 'secret', 'stop', 'confidentiality', 'bitcoin', 'coins', 'launch', 'codes', 'x-ray', 'x', 'ray', 'c', 'co'];
    const blocklist = new Blocklist(terms);
    const rnd = randomInts(3);
    let denied = 0;
    for (let t = 0; t < 200; t++) {
      const text = Array.from({ length: 2 + rnd(6) }, () => words[rnd(words.length)]!).join([' ', '', '-', '. '][rnd(4)]!);
      const want = blocklist.scan(text, true).kind === 'hit' ? { deny: 'blocklist' } : { text };
      if ('deny' in want) denied++;
      for (const size of [1, 2, 3, 5, 1000]) expect(run(rules(terms), chunked(text, size)), `size ${size}: ${JSON.stringify(text)}`).to.deep.equal(want);
    }
    expect(denied, 'both outcomes are exercised').to.be.within(20, 180);
  });

  it('denies a term padded with invisible characters, marks and look-alikes far beyond its length, at every chunk size', () => {
    const pad = '\u200b\u2060\ufeff\u00ad\u200d'.repeat(6);
    const disguised = [...'classified'].map((c) => (c === 'a' ? '\u0430' : c === 'c' ? 'c\u0327' : c)).join(pad);
    expect(disguised.length).to.be.above(250);
    for (const size of [1, 2, 3, 7, 31, 1000]) {
      expect(run(rules(['classified']), chunked(`See the ${disguised} file.`, size)), `size ${size}`).to.deep.equal({ deny: 'blocklist' });
    }
    const f = new OutputFilter(rules(['classified']));
    let released = '';
    for (const c of chunked(`See the ${disguised}`, 3)) {
      const step = f.push(c, false);
      if (step.kind === 'emit') released += step.text;
    }
    expect(normalise(released)).to.equal('see the '); // nothing of the term went out before the verdict
  });

  it('denies exactly when the whole text holds a term, for disguised random text at every chunk size', () => {
    const terms = ['classified', 'top secret', 'confidential*', '*coin'];
    const words = ['the', 'class', 'classified', 'declassified', 'top', 'secret', 'stop', 'confidentiality', 'bitcoin', 'coins', 'c', 'co'];
    const disguises = ['\u200b', '\u00ad', '\u0301', '\u2060\ufeff', ''];
    const lookAlike: Record<string, string> = { a: '\u0430', c: '\u0441', e: '\u0435', o: '\u03bf', p: '\u0440', s: '\u0455', i: '\u0456' };
    const blocklist = new Blocklist(terms);
    const rnd = randomInts(11);
    let denied = 0;
    for (let t = 0; t < 150; t++) {
      const plain = Array.from({ length: 2 + rnd(5) }, () => words[rnd(words.length)]!).join([' ', '', '. '][rnd(3)]!);
      const text = [...plain].map((ch) => (rnd(4) === 0 ? lookAlike[ch] ?? ch : ch) + disguises[rnd(disguises.length)]!).join('');
      const want = blocklist.scan(plain, true).kind === 'hit' ? { deny: 'blocklist' } : { text };
      expect(blocklist.scan(text, true).kind === 'hit', JSON.stringify(text)).to.equal('deny' in want);
      if ('deny' in want) denied++;
      for (const size of [1, 2, 5, 1000]) expect(run(rules(terms), chunked(text, size)), `size ${size}: ${JSON.stringify(text)}`).to.deep.equal(want);
    }
    expect(denied, 'both outcomes are exercised').to.be.within(15, 135);
  });

  it('does not decide on a card number until it stops growing', () => {
    const f = new OutputFilter(rules([], 'block', ['credit_card']));
    // 16 Luhn-valid digits so far, but a 17th may follow (and make it invalid).
    expect(f.push('4111111111111111', false)).to.deep.equal({ kind: 'emit', text: '', redacted: [] });
    // 17 digits are no card: released as they are once the number has ended, and with only
    // cards enabled a word cannot become one, so it is not held either.
    expect(f.push('9 tail', false)).to.deep.equal({ kind: 'emit', text: '41111111111111119 tail', redacted: [] });
    expect(f.push('', true)).to.deep.equal({ kind: 'emit', text: '', redacted: [] });
  });
});

type Call = string;

class RecordingSink implements TokenSink {
  calls: Call[] = [];
  onStart(m: StartMeta) {
    this.calls.push(`start:${m.model}`);
  }
  onText(c: number, t: string) {
    this.calls.push(`text:${c}:${t}`);
  }
  onChoiceEnd(c: number, r: FinishReason) {
    this.calls.push(`end:${c}:${r}`);
  }
  onEnd(u: Usage) {
    this.calls.push(`done:${u.completionTokens}`);
  }
  onError(e: InferFluxError) {
    this.calls.push(`error:${e.code}`);
  }
  text(choice = 0): string {
    return this.calls.filter((c) => c.startsWith(`text:${choice}:`)).map((c) => c.slice(`text:${choice}:`.length)).join('');
  }
}

const META: StartMeta = { model: 'tiny', promptTokens: 3, created: 0 };
const USAGE = { promptTokens: 3, completionTokens: 9, cachedTokens: 0 } as Usage;

describe('guardrails: guarded sink', () => {
  it('releases held text before the choice ends and keeps the lifecycle order', () => {
    const inner = new RecordingSink();
    let done: PiiKind[] = [];
    const s = guardSink(inner, rules(['zzz'], 'redact'), 2, { deny: () => expect.fail('no deny'), done: (_s, r) => (done = r) });
    s.onStart(META);
    for (const ch of chunked('mail a@b.io', 2)) s.onText(0, ch);
    s.onText(1, 'plain');
    s.onChoiceEnd(0, 'stop', 5);
    s.onChoiceEnd(1, 'length', 4);
    s.onEnd(USAGE);
    expect(inner.text(0)).to.equal('mail [REDACTED:email]');
    expect(inner.text(1)).to.equal('plain');
    expect(inner.calls[0]).to.equal('start:tiny');
    expect(inner.calls.slice(-4)).to.deep.equal(['end:0:stop', 'text:1:plain', 'end:1:length', 'done:9']);
    expect(done).to.deep.equal(['email']);
  });

  it('denies once mid-stream and passes nothing on afterwards', () => {
    const inner = new RecordingSink();
    const denials: string[] = [];
    const s = guardSink(inner, rules(['launch codes']), 1, { deny: (r) => denials.push(r) });
    s.onStart(META);
    for (const ch of chunked('Here are the launch codes: 1234. More text follows here.', 3)) s.onText(0, ch);
    s.onChoiceEnd(0, 'stop', 9);
    s.onEnd(USAGE);
    s.onError({ code: 'internal_error' } as InferFluxError);
    expect(denials).to.deep.equal(['blocklist']);
    expect(inner.text()).to.not.include('launch');
    expect(inner.calls.some((c) => c.startsWith('end:') || c.startsWith('done') || c.startsWith('error'))).to.equal(false);
  });
});

function policy(p: Partial<GuardrailPolicy> = {}): GuardrailPolicy {
  return { blocklist: [], pii: { action: 'off', kinds: [] }, opaEndpoint: '', opaTimeoutMs: 200, opaFailMode: 'closed', ...p };
}

function doc(g: GuardrailPolicy): PolicyDocument {
  return {
    version: 1,
    updatedAt: new Date(0).toISOString(),
    apiKeys: [],
    rateLimit: { requestsPerMinute: 0, tokensPerMinute: 0, tenantRequestsPerMinute: 0, tenantTokensPerMinute: 0 },
    guardrails: g,
  };
}

const ROUTE = '/v1/chat/completions';
const chat = (...contents: string[]) => ({ kind: 'chat' as const, messages: contents.map((content) => ({ role: 'user' as const, content })) });

describe('guardrails: engine prompt checks', () => {
  it('is inactive with nothing configured and passes the prompt through', async () => {
    const e = new GuardrailEngine(policy());
    expect(e.active).to.equal(false);
    const v = await e.checkPrompt({ prompt: chat('hi'), model: undefined, route: ROUTE });
    expect(v).to.deep.equal({ allow: true, prompt: chat('hi'), redacted: [], output: null });
  });

  it('denies a blocklisted term in any chat message, counting the denial and timing the verdict', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const e = new GuardrailEngine(policy({ blocklist: ['classified'] }), { metrics });
    const v = await e.checkPrompt({ prompt: chat('hello', 'this is Classified'), model: 'm', route: ROUTE });
    expect(v).to.deep.equal({ allow: false, reason: 'blocklist', engine: 'local', detail: undefined });
    const text = await metrics.render();
    expect(text).to.include('inferflux_guardrail_denials_total{stage="prompt",reason="blocklist"} 1');
    expect(text).to.include('inferflux_guardrail_verdict_seconds_count{stage="prompt",engine="local"} 1');
  });

  it('redacts PII per message before generation, or blocks with pii_<kind>', async () => {
    const redacting = new GuardrailEngine(policy({ pii: { action: 'redact', kinds: ['email', 'phone'] } }));
    const v = await redacting.checkPrompt({ prompt: chat('mail a@b.io', 'call +1 415 555 2671'), model: undefined, route: ROUTE });
    expect(v.allow && v.prompt).to.deep.equal(chat('mail [REDACTED:email]', 'call [REDACTED:phone]'));
    expect(v.allow && v.redacted).to.deep.equal(['email', 'phone']);
    const blocking = new GuardrailEngine(policy({ pii: { action: 'block', kinds: ['iban'] } }));
    const b = await blocking.checkPrompt({ prompt: { kind: 'text', text: 'to DE89 3704 0044 0532 0130 00' }, model: undefined, route: ROUTE });
    expect(b).to.deep.include({ allow: false, reason: 'pii_iban' });
  });

  it('with pii.output false scrubs the prompt and leaves the output to the blocklist alone', async () => {
    const promptOnly = new GuardrailEngine(policy({ blocklist: ['classified'], pii: { action: 'redact', kinds: ['email'], output: false } }));
    const v = await promptOnly.checkPrompt({ prompt: chat('mail a@b.io'), model: undefined, route: ROUTE });
    expect(v.allow && v.prompt).to.deep.equal(chat('mail [REDACTED:email]'));
    const out = v.allow ? v.output : undefined;
    expect(out?.piiAction).to.equal('off');
    expect(run(out!, ['write to ', 'bob@corp.example', ' now'])).to.deep.equal({ text: 'write to bob@corp.example now' });
    expect(run(out!, ['this is ', 'classified'])).to.deep.equal({ deny: 'blocklist' });
    // Without a blocklist nothing is left to filter: no output filter at all.
    const bare = await new GuardrailEngine(policy({ pii: { action: 'redact', kinds: ['email'], output: false } })).checkPrompt({ prompt: chat('hi'), model: undefined, route: ROUTE });
    expect(bare.allow && bare.output).to.equal(null);
  });

  it('refuses token-id prompts it cannot read', async () => {
    const e = new GuardrailEngine(policy({ blocklist: ['x'] }));
    const v = await e.checkPrompt({ prompt: { kind: 'tokens', tokens: [1, 2, 3] }, model: undefined, route: '/v1/completions' });
    expect(v).to.deep.include({ allow: false, reason: 'token_prompt' });
  });

  it('denials are 400 guardrail_denied with the reason in the message and param null', () => {
    const err = guardrailDenied('opa_denied', 'finance is off limits');
    expect([err.status, err.code, err.param]).to.deep.equal([400, 'guardrail_denied', null]);
    expect(err.message).to.equal('Denied by guardrail policy: opa_denied (finance is off limits).');
  });

  it('an external engine that could not decide (fail mode closed) is 503 guardrail_unavailable with Retry-After, audited as 503', () => {
    const err = guardrailDenied('opa_unavailable', 'no answer within 150 ms');
    expect([err.status, err.code, err.type, err.param, err.retryAfter]).to.deep.equal([503, 'guardrail_unavailable', 'service_unavailable', null, 5]);
    expect(err.message).to.not.include('150 ms'); // why it failed is for the audit log, not the client
    const ctx = { requestId: 'r1', prompt: { kind: 'text' as const, text: 'x' }, model: 'm', route: ROUTE };
    expect(denialAuditEvent(ctx, 'opa_unavailable', 'prompt', false, 'no answer within 150 ms')).to.deep.include({
      status: 503,
      decision: 'guardrail:opa_unavailable',
      detail: 'prompt: no answer within 150 ms',
    });
  });

  it('audit lines carry the prompt hash, not the text, unless debug mode', () => {
    const ctx = { requestId: 'r1', prompt: { kind: 'text' as const, text: 'secret plan' }, model: 'm', route: ROUTE };
    const hashed = denialAuditEvent(ctx, 'blocklist', 'prompt', false);
    expect(hashed).to.deep.include({ event: 'denial', decision: 'guardrail:blocklist', status: 400, requestId: 'r1', route: ROUTE });
    expect(hashed.prompt).to.match(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(hashed)).to.not.include('secret plan');
    expect(denialAuditEvent(ctx, 'blocklist', 'prompt', true).prompt).to.equal('secret plan');
  });

  it('follows PolicyService updates on the next request', async () => {
    const service = new PolicyService(doc(policy()));
    const e = new GuardrailEngine(policy());
    const unsubscribe = e.follow(service);
    const ask = () => e.checkPrompt({ prompt: chat('the launch codes'), model: undefined, route: ROUTE });
    expect((await ask()).allow).to.equal(true);
    const t0 = performance.now();
    await service.update((d) => {
      d.guardrails = policy({ blocklist: ['launch codes'] });
    });
    expect(await ask()).to.deep.include({ allow: false, reason: 'blocklist' });
    expect(performance.now() - t0).to.be.below(250);
    await service.update((d) => {
      d.guardrails.blocklist = [];
    });
    expect((await ask()).allow).to.equal(true);
    unsubscribe();
  });
});
