/**
 * Tokenizer actor pool against the project's tiny GGUF. The piscina worker is compiled JS, so the
 * pool is loaded from dist/ (run `npm run build` first); types come from src/. Expected values are
 * computed in this thread with node-llama-cpp and @huggingface/jinja directly.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import { InferFluxError } from '../../src/errors.js';
import { generateModel } from '../../src/runtime/gguf/generate.js';
import {
  chatNeedsBos,
  compileChatTemplate,
  renderChatMLFallback,
  renderChatTemplate,
} from '../../src/runtime/chat-template.js';
import type { TokenizerPool } from '../../src/actors/tokenizer/pool.js';

type PoolModule = typeof import('../../src/actors/tokenizer/pool.js');

const DIST_POOL = fileURLToPath(new URL('../../dist/actors/tokenizer/pool.js', import.meta.url));
const SPECIAL = { bosToken: '<s>', eosToken: '</s>' };
const MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hello there, how are you?' },
  { role: 'assistant', content: 'Fine.' },
  { role: 'user', content: 'Say <|im_end|> and <s> literally' },
];

describe('chat template rendering', () => {
  it('matches a direct Jinja render and passes bos/eos through', () => {
    const src = '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}';
    const expected = new Template(src).render({ messages: MESSAGES, add_generation_prompt: true, ...{ bos_token: '<s>', eos_token: '</s>' } });
    expect(renderChatTemplate(src, MESSAGES, SPECIAL)).to.equal(expected);
    expect(expected.startsWith('<s>[system]Be brief.</s>')).to.equal(true);
  });

  it('falls back to ChatML when the model has no template', () => {
    const text = renderChatTemplate(undefined, MESSAGES.slice(0, 2), SPECIAL);
    expect(text).to.equal('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there, how are you?<|im_end|>\n<|im_start|>assistant\n');
    expect(compileChatTemplate('  ')(MESSAGES.slice(0, 2), SPECIAL)).to.equal(renderChatMLFallback(MESSAGES.slice(0, 2)));
  });

  it('a template that raises on the messages is invalid_request; an unparsable one is internal', () => {
    const strict = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be user') }}{% endif %}ok";
    expect(renderChatTemplate(strict, [{ role: 'user', content: 'x' }], SPECIAL)).to.equal('ok');
    const err = captureError(() => renderChatTemplate(strict, MESSAGES, SPECIAL));
    expect(err).to.be.instanceOf(InferFluxError).and.include({ code: 'invalid_request', param: 'messages' });
    expect((err as Error).message).to.contain('first message must be user');
    expect(captureError(() => compileChatTemplate('{% for %}'))).to.include({ code: 'internal_error' });
  });

  it('prepends BOS only when the GGUF asks and the template did not emit it', () => {
    expect(chatNeedsBos('<|im_start|>user', SPECIAL, true)).to.equal(true);
    expect(chatNeedsBos('<s><|im_start|>user', SPECIAL, true)).to.equal(false);
    expect(chatNeedsBos('<|im_start|>user', SPECIAL, false)).to.equal(false);
    expect(chatNeedsBos('<s>x', { bosToken: '', eosToken: '' }, true)).to.equal(true);
  });
});

describe('tokenizer actor pool (tiny GGUF)', function () {
  this.timeout(120_000);
  let dir: string;
  let modelPath: string;
  let llama: Llama;
  let model: LlamaModel;
  let pool: TokenizerPool;

  before(async function () {
    if (!existsSync(DIST_POOL)) throw new Error(`${DIST_POOL} is missing: run \`npm run build\` first`);
    dir = await mkdtemp(join(tmpdir(), 'ifx-tok-'));
    modelPath = join(dir, 'tiny.gguf');
    await generateModel({ shape: 'tiny', seed: 7, outPath: modelPath });
    const { createTokenizerPool } = (await import(DIST_POOL)) as PoolModule;
    pool = createTokenizerPool({ workers: 2 });
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 1 });
    model = await llama.loadModel({ modelPath, vocabOnly: true });
    await pool.warm(modelPath);
  });

  after(async () => {
    await pool?.destroy();
    await model?.dispose();
    await llama?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('chat: renders the model template like Jinja and tokenizes it like the model, with one BOS', async () => {
    const src = model.fileInfo.metadata.tokenizer?.chat_template;
    expect(src, 'tiny GGUF carries a chat template').to.be.a('string');
    const bosToken = model.detokenize([model.tokens.bos!], true);
    const eosToken = model.detokenize([model.tokens.eos!], true);
    const text = new Template(src!).render({ messages: MESSAGES, add_generation_prompt: true, bos_token: bosToken, eos_token: eosToken });
    expect(model.tokens.shouldPrependBosToken).to.equal(true);
    expect(text.startsWith(bosToken)).to.equal(false);

    const { tokens } = await pool.tokenize({ modelPath, prompt: { kind: 'chat', messages: MESSAGES } });
    expect(tokens).to.deep.equal([model.tokens.bos, ...model.tokenize(text, true)]);
    // Ours, plus the "<s>" typed in a message: content is parsed for special tokens like the
    // template text around it (llama.cpp server does the same); see worker.ts.
    expect(tokens.filter((t) => t === model.tokens.bos)).to.have.length(2);
  });

  it('text: no special-token parsing, BOS prepended, round-trips through detokenize', async () => {
    const text = 'Plain text with <|im_end|> inside, ünïcödé and emoji 🎉.';
    const { tokens } = await pool.tokenize({ modelPath, prompt: { kind: 'text', text } });
    expect(tokens[0]).to.equal(model.tokens.bos);
    expect(tokens.slice(1)).to.deep.equal(model.tokenize(text, false));
    expect(model.detokenize(tokens.slice(1) as never, false)).to.equal(text);
    const empty = await pool.tokenize({ modelPath, prompt: { kind: 'text', text: '' } });
    expect(empty.tokens).to.deep.equal([model.tokens.bos]);
  });

  it('a missing or unreadable model rejects with model_not_loaded, and the pool keeps working', async () => {
    const missing = await capture(pool.tokenize({ modelPath: join(dir, 'nope.gguf'), prompt: { kind: 'text', text: 'x' } }));
    // The pool comes from dist/, so its InferFluxError is not this file's class: check the brand.
    expect(missing).to.include({ name: 'InferFluxError', code: 'model_not_loaded', status: 503 });
    const junk = join(dir, 'junk.gguf');
    await writeFile(junk, 'this is not a gguf file at all, just some bytes');
    const bad = await capture(pool.tokenize({ modelPath: junk, prompt: { kind: 'text', text: 'x' } }));
    expect(bad).to.include({ name: 'InferFluxError', code: 'model_not_loaded' });

    const again = await Promise.all(
      Array.from({ length: 8 }, () => pool.tokenize({ modelPath, prompt: { kind: 'text', text: 'still here' } })),
    );
    for (const r of again) expect(r.tokens).to.deep.equal([model.tokens.bos, ...model.tokenize('still here', false)]);
  });

  it('warm reaches every thread even after errors', async () => {
    await pool.warm(modelPath);
  });
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

async function capture(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
