/**
 * llama.cpp server's tokenizer helpers on the real server (tokenizer pool, the tiny model's real
 * vocabulary and chat template): `/tokenize`, `/detokenize`, `/apply-template`, scope `read`.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { KEYS, protocolServer } from '../helpers/protocol-server.js';
import { api, type RunningServer } from '../helpers/server.js';

const READ_KEY = KEYS.read;
const GEN_KEY = KEYS.generate;

describe('llama.cpp tokenizer helpers on the real tokenizer pool', function () {
  this.timeout(120_000);
  let server: RunningServer;
  const post = (path: string, body: unknown, key: string | null = READ_KEY) => api(server, 'POST', path, body, key);

  before(async () => {
    server = await protocolServer();
  });

  it('tokenize and detokenize round-trip; pieces spell the text', async () => {
    const text = 'Hello world, once upon a time.';
    const t = await post('/tokenize', { content: text });
    expect(t.status).to.equal(200);
    expect(Object.keys(t.body)).to.deep.equal(['tokens']);
    const tokens = t.body.tokens as number[];
    expect(tokens.length).to.be.greaterThan(3);
    for (const id of tokens) expect(Number.isInteger(id)).to.equal(true);
    const d = await post('/detokenize', { tokens });
    expect(d.status).to.equal(200);
    expect(d.body).to.deep.equal({ content: text });
    const p = await post('/tokenize', { content: text, with_pieces: true });
    const pieces = p.body.tokens as { id: number; piece: string }[];
    expect(pieces.map((x) => x.id)).to.deep.equal(tokens);
    expect(pieces.map((x) => x.piece).join('')).to.equal(text);
  });

  it('add_special prepends BOS; parse_special decides whether special-token text is one token', async () => {
    const plain = (await post('/tokenize', { content: 'Hi' })).body.tokens as number[];
    const withBos = (await post('/tokenize', { content: 'Hi', add_special: true })).body.tokens as number[];
    expect(withBos.slice(1)).to.deep.equal(plain);
    expect(withBos.length).to.equal(plain.length + 1);
    const special = (await post('/tokenize', { content: '<|im_end|>' })).body.tokens as number[];
    const literal = (await post('/tokenize', { content: '<|im_end|>', parse_special: false })).body.tokens as number[];
    expect(special).to.have.length(1);
    expect(literal.length).to.be.greaterThan(1);
  });

  it('apply-template renders the chat template; its tokens are the prompt a chat completion uses', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi.' },
    ];
    const a = await post('/apply-template', { messages });
    expect(a.status).to.equal(200);
    const prompt = a.body.prompt as string;
    expect(prompt).to.include('<|im_start|>user\nHi.<|im_end|>');
    expect(prompt.endsWith('<|im_start|>assistant\n')).to.equal(true);
    // Chat prompts get BOS when the model asks for it, as add_special does.
    const tokens = (await post('/tokenize', { content: prompt, add_special: true })).body.tokens as number[];
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: GEN_KEY, maxRetries: 0 });
    const c = await client.chat.completions.create({ model: 'tiny-seed0', messages: messages as never, max_tokens: 1 });
    expect(c.usage!.prompt_tokens).to.equal(tokens.length);
  });

  it('bad input and scopes', async () => {
    const d = await post('/detokenize', { tokens: [1, 99_999_999] });
    expect(d.status).to.equal(400);
    expect(d.body.error).to.include({ code: 'invalid_request', param: 'tokens' });
    expect(d.body.error.message).to.match(/^Token id 99999999 is outside the vocabulary/);
    const m = await post('/tokenize', { content: 'x', model: 'nope' });
    expect(m.status).to.equal(404);
    expect(m.body.error.code).to.equal('model_not_found');
    const missing = await post('/tokenize', {});
    expect(missing.status).to.equal(400);
    expect(missing.body.error.message).to.equal("Missing required parameter: 'content'.");
    // llama.cpp's fields only: anything else is named, never dropped.
    const unknown = await post('/tokenize', { content: 'x', with_piece: true });
    expect(unknown.status).to.equal(400);
    expect(unknown.body.error).to.include({ code: 'invalid_request', param: 'with_piece' });
    // Scope `read`: a generate-only key is refused, no key is refused.
    expect((await post('/tokenize', { content: 'x' }, GEN_KEY)).status).to.equal(403);
    expect((await post('/apply-template', { messages: [{ role: 'user', content: 'x' }] }, null)).status).to.equal(401);
  });

  it('a 401 reaches each protocol in its own envelope', async () => {
    const ollama = await api(server, 'GET', '/api/tags', undefined, null);
    expect(ollama.status).to.equal(401);
    expect(ollama.body).to.deep.equal({ error: 'Missing credentials: send Authorization: Bearer <key> or x-api-key.' });
    const anthropic = await post('/v1/messages', { model: 'tiny-seed0', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }, null);
    expect(anthropic.status).to.equal(401);
    expect(anthropic.body).to.deep.equal({ type: 'error', error: { type: 'authentication_error', message: 'Missing credentials: send Authorization: Bearer <key> or x-api-key.' } });
    const lmStudio = await post('/api/v0/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, null);
    expect(lmStudio.body.error).to.include({ code: 'unauthorized', type: 'authentication_error' });
    // Read-only key on Ollama's generation route: 403 in Ollama's shape.
    const forbidden = await post('/api/generate', { model: 'tiny-seed0', prompt: 'x' });
    expect(forbidden.status).to.equal(403);
    expect(Object.keys(forbidden.body)).to.deep.equal(['error']);
  });
});
