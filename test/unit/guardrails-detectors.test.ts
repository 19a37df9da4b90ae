/**
 * Guardrail detectors, pure: PII (positives and look-alikes that must not match), checksums,
 * redaction, and the blocklist (NFKC, case, whole words, wildcards, stream-pending ends).
 */
import { expect } from 'chai';
import { Blocklist, normalise } from '../../src/policy/guardrails/blocklist.js';
import { findPii, ibanValid, luhnValid, redact, PII_KINDS } from '../../src/policy/guardrails/pii.js';
import type { PiiKind } from '../../src/policy/types.js';

const ALL = new Set<PiiKind>(PII_KINDS);

function kinds(text: string, only: PiiKind[] = [...PII_KINDS]): string[] {
  return findPii(text, new Set(only)).map((m) => `${m.kind}:${text.slice(m.start, m.end)}`);
}

describe('guardrails: checksums', () => {
  it('Luhn accepts valid card numbers and rejects one-digit changes', () => {
    for (const n of ['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117', '4012888888881881']) {
      expect(luhnValid(n), n).to.equal(true);
    }
    for (const n of ['4111111111111112', '5555555555554445', '1234567890123', '']) expect(luhnValid(n), n).to.equal(false);
  });

  it('IBAN mod-97 accepts real examples and rejects a changed check digit', () => {
    for (const n of ['GB82WEST12345698765432', 'DE89370400440532013000', 'FR1420041010050500013M02606', 'NL91ABNA0417164300']) {
      expect(ibanValid(n), n).to.equal(true);
    }
    for (const n of ['GB83WEST12345698765432', 'DE89370400440532013001', 'XX00', 'GB82']) expect(ibanValid(n), n).to.equal(false);
  });
});

describe('guardrails: PII detectors', () => {
  it('email: finds addresses, not handles or dotted words', () => {
    expect(kinds('mail jane.doe+tag@example.co.uk today', ['email'])).to.deep.equal(['email:jane.doe+tag@example.co.uk']);
    expect(kinds('x@y.z', ['email'])).to.deep.equal([]);
    expect(kinds('follow @jane on example.com and v1.2@3', ['email'])).to.deep.equal([]);
  });

  it('phone: international, parenthesised and separated national numbers', () => {
    expect(kinds('call +1 415 555 2671 now', ['phone'])).to.deep.equal(['phone:+1 415 555 2671']);
    expect(kinds('call +44 20 7946 0958.', ['phone'])).to.deep.equal(['phone:+44 20 7946 0958']);
    expect(kinds('+4915123456789', ['phone'])).to.deep.equal(['phone:+4915123456789']);
    expect(kinds('(555) 123-4567', ['phone'])).to.deep.equal(['phone:(555) 123-4567']);
    expect(kinds('ring 555-123-4567', ['phone'])).to.deep.equal(['phone:555-123-4567']);
    expect(kinds('ring 020 7946 0958', ['phone'])).to.deep.equal(['phone:020 7946 0958']);
  });

  it('phone: no years, counts, timestamps, dates, IPs, versions or money', () => {
    for (const t of [
      'in 1999 and 2024',
      'used 123456 tokens',
      'ts 1700000000 and 1700000000123',
      'on 2024-01-15 at 10:30',
      'host 192.168.100.200',
      'version 10.2.3 and 3.14159',
      'cost $1,234,567.00',
      'range 100-200-300',
      'id 1234567890',
      '+12',
    ]) {
      expect(kinds(t, ['phone']), t).to.deep.equal([]);
    }
  });

  it('credit card: Luhn-valid 13-19 digits with separators only', () => {
    expect(kinds('card 4111 1111 1111 1111 exp', ['credit_card'])).to.deep.equal(['credit_card:4111 1111 1111 1111']);
    expect(kinds('card 4111-1111-1111-1111', ['credit_card'])).to.deep.equal(['credit_card:4111-1111-1111-1111']);
    expect(kinds('amex 378282246310005', ['credit_card'])).to.deep.equal(['credit_card:378282246310005']);
    expect(kinds('card 4111 1111 1111 1112', ['credit_card'])).to.deep.equal([]);
    expect(kinds('ms 1700000000000 and 12345678901234567890123', ['credit_card'])).to.deep.equal([]);
  });

  it('IBAN: with or without spaces, mod-97 valid only', () => {
    expect(kinds('pay GB82 WEST 1234 5698 7654 32 now', ['iban'])).to.deep.equal(['iban:GB82 WEST 1234 5698 7654 32']);
    expect(kinds('DE89370400440532013000', ['iban'])).to.deep.equal(['iban:DE89370400440532013000']);
    expect(kinds('GB83 WEST 1234 5698 7654 32', ['iban'])).to.deep.equal([]);
    expect(kinds('SHA AB12CDEF0123456789', ['iban'])).to.deep.equal([]);
  });

  it('secret: vendor prefixes, AWS ids, JWTs, PEM headers, key=value with entropy', () => {
    const openai = 'sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w';
    const gh = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
    const aws = 'AKIAIOSFODNN7EXAMPLE';
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    expect(kinds(`key ${openai} here`, ['secret'])).to.deep.equal([`secret:${openai}`]);
    expect(kinds(`token ${gh}`, ['secret'])).to.deep.equal([`secret:${gh}`]);
    expect(kinds(`id=${aws}`, ['secret'])).to.deep.equal([`secret:${aws}`]);
    expect(kinds(`Authorization: Bearer ${jwt}`, ['secret'])).to.deep.equal([`secret:${jwt}`]);
    expect(kinds('-----BEGIN RSA PRIVATE KEY-----', ['secret'])).to.deep.equal(['secret:-----BEGIN RSA PRIVATE KEY-----']);
    expect(kinds('api_key = "q8Zr2vX9LmN4pT7wK1sB"', ['secret'])).to.deep.equal(['secret:q8Zr2vX9LmN4pT7wK1sB']);
  });

  it('secret: no ordinary words, low-entropy values or short prefixes', () => {
    for (const t of [
      'the task-based approach is fine',
      'sk-short',
      'password: aaaaaaaaaaaaaaaaaaaa',
      'max_tokens=1000000000000000',
      'token counting is described in chapter 12345678901234567',
      'AKIA is not enough',
    ]) {
      expect(kinds(t, ['secret']), t).to.deep.equal([]);
    }
  });

  it('only the enabled kinds are reported, sorted and disjoint', () => {
    const text = 'a@b.io, 4111 1111 1111 1111, +1 415 555 2671';
    expect(kinds(text)).to.deep.equal(['email:a@b.io', 'credit_card:4111 1111 1111 1111', 'phone:+1 415 555 2671']);
    expect(kinds(text, ['phone'])).to.deep.equal(['phone:+1 415 555 2671']);
  });

  it('redact replaces exactly the spans', () => {
    const text = 'mail a@b.io or call +1 415 555 2671.';
    expect(redact(text, findPii(text, ALL))).to.equal('mail [REDACTED:email] or call [REDACTED:phone].');
    expect(redact('nothing here', [])).to.equal('nothing here');
  });
});

describe('guardrails: blocklist', () => {
  it('normalises NFKC, case and whitespace', () => {
    expect(normalise('ＣＬＡＳＳＩＦＩＥＤ\t\n Doc')).to.equal('classified doc');
    expect(normalise('ﬁle')).to.equal('file');
  });

  it('drops invisible characters, soft hyphens and marks on Latin/Greek/Cyrillic letters, and folds look-alike letters', () => {
    for (const invisible of ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u200e', '\u202e']) {
      expect(normalise(`clas${invisible}si${invisible}${invisible}fied`), JSON.stringify(invisible)).to.equal('classified');
    }
    expect(normalise('c\u0308la\u0301\u0301ssi\u0336fied')).to.equal('classified'); // combining marks, stacked too
    expect(normalise('Clássïfíèd')).to.equal('classified'); // precomposed accents decompose first
    expect(normalise('\u0441l\u0430\u0455\u0455ifi\u0435d')).to.equal('classified'); // Cyrillic с а ѕ е
    expect(normalise('\u03bf\u03c1\u03b5\u03bd')).to.equal('opev'); // Greek ο ρ ε ν
    expect(normalise('\u041d\u0415\u0422')).to.equal(normalise('\u043d\u0435\u0442')); // НЕТ and нет fold alike
    expect(normalise('\u0915\u093e\u092e')).to.equal('\u0915\u093e\u092e'); // Devanagari keeps its vowel sign
    expect(normalise('\u0301\u0301x')).to.equal('x'); // marks with no letter are dropped
  });

  it('catches terms written with invisible characters, marks or look-alikes, in terms and text alike, still as whole words', () => {
    const b = new Blocklist(['classified', 'top secret', 'secret']);
    for (const text of [
      'the clas\u200bsified plan',
      'the cla\u00adssi\u00adfied plan',
      'the c\u0327lassified plan',
      'the \u0441l\u0430ssified plan',
      'the CLASS\u0399FIED plan', // Greek capital iota
      'a t\u043ep\u2060 s\u0435cret',
      'the \u0301classified plan', // a stray mark in front does not make the term part of a word
    ]) {
      expect(b.scan(text).kind, JSON.stringify(text)).to.equal('hit');
    }
    expect(b.scan('the secre\u200btary').kind).to.equal('clean');
    expect(b.scan('declas\u200bsified').kind).to.equal('clean');
    // A term itself written with a look-alike or an invisible character matches the plain word.
    expect(new Blocklist(['\u0441lassi\u200bfied']).scan('Classified!').kind).to.equal('hit');
  });

  it('matches whole words case-insensitively, across Unicode forms', () => {
    const b = new Blocklist(['Classified', 'top secret']);
    expect(b.scan('This is CLASSIFIED.').kind).to.equal('hit');
    expect(b.scan('This is ＣＬＡＳＳＩＦＩＥＤ').kind).to.equal('hit');
    expect(b.scan('a TOP   Secret plan').kind).to.equal('hit');
    expect(b.scan('declassified files').kind).to.equal('clean');
    expect(b.scan('classifieds section').kind).to.equal('clean');
    expect(b.scan('top secretary').kind).to.equal('clean');
  });

  it('wildcards lift a word edge; punctuation terms match anywhere', () => {
    const b = new Blocklist(['classif*', '*coin', 'c++']);
    expect(b.scan('classification').kind).to.equal('hit');
    expect(b.scan('bitcoin').kind).to.equal('hit');
    expect(b.scan('I write c++ daily').kind).to.equal('hit');
    expect(b.scan('unclassified coins').kind).to.equal('clean');
  });

  it('a whole-word term at the end of a stream chunk is pending until the next character', () => {
    const b = new Blocklist(['secret']);
    expect(b.scan('the secret', false).kind).to.equal('pending');
    expect(b.scan('the secret', true).kind).to.equal('hit');
    expect(b.scan('the secret.', false).kind).to.equal('hit');
    expect(b.scan('the secretary', false).kind).to.equal('clean');
  });

  it('reports max term length and treats empty or star-only terms as absent', () => {
    const b = new Blocklist(['  ', '*', 'abc', 'longest term']);
    expect(b.size).to.equal(2);
    expect(b.maxTermLength).to.equal('longest term'.length);
    expect(new Blocklist([]).scan('anything').kind).to.equal('clean');
  });
});
