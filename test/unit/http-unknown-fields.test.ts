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

  // Every protocol, not only OpenAI's chat: a field it does not name is refused before any work.
  for (const [path, body, param] of [
    ['/v1/responses', { input: 'hi', frobnicate: 1 }, 'frobnicate'],
    ['/v1/responses', { input: 'hi', text: { format: { type: 'text' }, frobnicate: 1 } }, 'text.frobnicate'],
    ['/v1/messages', { model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }], frobnicate: 1 }, 'frobnicate'],
    ['/v1/messages/count_tokens', { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }, 'max_tokens'],
    ['/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], frobnicate: 1 }, 'frobnicate'],
    ['/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], options: { frobnicate: 1 } }, 'options.frobnicate'],
    ['/api/generate', { model: 'tiny', prompt: 'hi', frobnicate: 1 }, 'frobnicate'],
    ['/api/embed', { model: 'tiny', input: 'hi', frobnicate: 1 }, 'frobnicate'],
    ['/api/show', { model: 'tiny', frobnicate: 1 }, 'frobnicate'],
    ['/tokenize', { content: 'hi', frobnicate: 1 }, 'frobnicate'],
    ['/detokenize', { tokens: [1], frobnicate: 1 }, 'frobnicate'],
  ] as const) {
    it(`${path}: '${param}' is refused with a 400 that names it`, async () => {
      const r = await post(path, body);
      expect(r.status).to.equal(400);
      const text = await r.text();
      expect(text).to.contain(`Unrecognized request argument supplied: '${param}'`);
      expect(t.gateway.inputs).to.have.length(0);
    });
  }

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

  const IMG = 'data:image/png;base64,AAAA';
  const post = (path: string, body: unknown) =>
    fetch(`${t.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('image, audio and file input on every protocol is 422 capability_not_supported naming the model, the capability and the part', async () => {
    const text = { type: 'text', text: 'look' };
    const cases: [path: string, body: Record<string, unknown>, model: string, what: string, capability: string, param: string][] = [
      ['/v1/chat/completions', { messages: [{ role: 'user', content: [text, { type: 'image_url', image_url: { url: IMG } }] }] }, 'tiny', 'image', 'vision', 'messages[0].content[1]'],
      ['/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: [text, { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }] }, 'tiny', 'audio', 'audio', 'messages[0].content[1]'],
      ['/v1/responses', { model: 'tiny', input: [{ role: 'user', content: [{ type: 'input_text', text: 'x' }, { type: 'input_image', image_url: IMG }] }] }, 'tiny', 'image', 'vision', 'input[0].content[1]'],
      ['/v1/responses', { input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }, 'tiny', 'file', 'file input', 'input[0].content[0]'],
      ['/v1/messages', { model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] }] }, 'tiny', 'image', 'vision', 'messages[0].content[0]'],
      ['/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'x', images: ['AAAA'] }] }, 'tiny', 'image', 'vision', 'messages[0].images'],
      ['/api/generate', { model: 'tiny', prompt: 'x', images: ['AAAA'] }, 'tiny', 'image', 'vision', 'images'],
    ];
    for (const [path, body, model, what, capability, param] of cases) {
      const r = await post(path, body);
      const label = `${path} ${JSON.stringify(body)}`;
      expect(r.status, label).to.equal(422);
      const err = (await json(r)).error;
      if (path.startsWith('/api/') || path === '/v1/messages') {
        // Ollama's envelope is {error: message}, Anthropic's {type: 'error', error: {type, message}}.
        expect(typeof err === 'string' ? err : err.message, label).to.include(`Model '${model}' does not support ${what} input (capability '${capability}')`);
        continue;
      }
      expect(err.code, label).to.equal('capability_not_supported');
      expect(err.param, label).to.equal(param);
      expect(err.message, label).to.equal(
        `Model '${model}' does not support ${what} input (capability '${capability}'): this server's llama.cpp binding has no multimodal support yet; send text content only.`,
      );
    }
    expect(t.gateway.inputs).to.have.length(0);
  });
});
