/**
 * No silent drops: a request field InferFlux does not implement is a 400 naming it, never a 200
 * that ignores it; the documented allow-list (user, store, metadata, service_tier) is accepted.
 */
import { expect } from 'chai';
import { json, startServer, type TestServer } from './http-fixtures.js';

describe('http: unknown request fields', () => {
  let t: TestServer;
  before(async () => (t = await startServer()));
  after(() => t.server.close());

  const post = (path: string, body: unknown) =>
    fetch(`${t.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  for (const [field, value] of [
    ['functions', [{ name: 'f' }]],
    ['frobnicate', 1],
  ] as const) {
    it(`chat: '${field}' is refused with a 400 that names it`, async () => {
      const r = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], [field]: value });
      expect(r.status).to.equal(400);
      const body = await json(r);
      expect(body.error.param).to.equal(field);
      expect(body.error.message).to.contain(`'${field}'`);
      expect(t.gateway.inputs).to.have.length(0);
    });
  }

  it('chat: an unknown field inside a message or a content part is named with its path', async () => {
    let r = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi', weight: 2 }] });
    expect((await json(r)).error.param).to.equal('messages[0].weight');
    r = await post('/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'text', text: 'a', cache_control: {} }] }] });
    expect((await json(r)).error.param).to.equal('messages[0].content[0].cache_control');
  });

  it('completions: suffix and best_of are refused, naming them', async () => {
    for (const field of ['suffix', 'best_of']) {
      const r = await post('/v1/completions', { prompt: 'hi', [field]: field === 'suffix' ? 'x' : 2 });
      expect(r.status).to.equal(400);
      expect((await json(r)).error.param).to.equal(field);
    }
  });

  it('the documented allow-list is accepted and ignored', async () => {
    const r = await post('/v1/chat/completions', {
      messages: [{ role: 'user', content: 'hi' }],
      user: 'u-1',
      store: false,
      metadata: { team: 'a' },
      service_tier: 'auto',
    });
    expect(r.status).to.equal(200);
  });
});

describe('http: media content parts', () => {
  let t: TestServer;
  before(async () => (t = await startServer()));
  after(() => t.server.close());

  it('an image_url or input_audio part is 422 capability_not_supported naming the model and the part', async () => {
    for (const [part, what] of [
      [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, 'image'],
      [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }, 'audio'],
    ] as const) {
      const r = await fetch(`${t.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, part] }] }),
      });
      expect(r.status).to.equal(422);
      const { error } = await json(r);
      expect(error.code).to.equal('capability_not_supported');
      expect(error.param).to.equal('messages[0].content[1]');
      expect(error.message).to.equal(`Model 'tiny' does not accept ${what} input; send text content only.`);
    }
    expect(t.gateway.inputs).to.have.length(0);
  });
});
