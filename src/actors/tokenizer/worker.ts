/**
 * Tokenizer actor: a piscina worker module. The default export turns a `TokenizeTask` (chat
 * messages or plain text) into token ids with the model's own vocabulary and chat template.
 *
 * Per thread: one `Llama` (getLlama forks a test process and costs ~0.6 s, notes §1, so it is made
 * once) and, per model path, one vocab-only model (~40 ms, +11 MB, notes §9) with its chat template
 * compiled once. The named exports `warm`, `release` and `dispose` are run on every thread by the pool.
 *
 * Errors leave as thrown `WireError` objects, not `Error`s: piscina posts the thrown value with
 * structured clone, which keeps a plain object whole but strips an Error to name/message/stack.
 */
import { threadId } from 'node:worker_threads';
import type { Llama, LlamaModel } from 'node-llama-cpp';
import { getThreadLlama } from '../../runtime/llama/thread-llama.js';
import { InferFluxError, type WireError } from '../../errors.js';
import type { ApplyTemplateTask, DetokenizeTask, TokenizeResult, TokenizeTask, TokenizeTextResult, TokenizeTextTask } from '../protocol.js';
import { TokenTextStream } from '../../runtime/text/token-text-stream.js';
import { chatNeedsBos, compileChatTemplate, type ChatTemplateRenderer, type SpecialTokenStrings } from '../../runtime/chat-template.js';

interface LoadedTokenizer {
  model: LlamaModel;
  render: ChatTemplateRenderer;
  special: SpecialTokenStrings;
  /** BOS id when the GGUF asks for it to be prepended (`add_bos_token`), else null. */
  bos: number | null;
}

let llama: Promise<Llama> | null = null;
const tokenizers = new Map<string, Promise<LoadedTokenizer>>();

function tokenizerLlama(): Promise<Llama> {
  // maxThreads 1: tokenizing never runs ggml compute, and engine workers own the cores.
  llama ??= getThreadLlama({ gpu: false, maxThreads: 1 });
  return llama;
}

async function load(modelPath: string): Promise<LoadedTokenizer> {
  let model: LlamaModel;
  try {
    model = await (await tokenizerLlama()).loadModel({ modelPath, vocabOnly: true });
  } catch (err) {
    throw new InferFluxError('model_not_loaded', `Cannot load the tokenizer of ${modelPath}: ${(err as Error)?.message ?? err}`);
  }
  try {
    const { bos, eos } = model.tokens;
    const special: SpecialTokenStrings = {
      bosToken: bos === null ? '' : model.detokenize([bos], true),
      eosToken: eos === null ? '' : model.detokenize([eos], true),
    };
    const render = compileChatTemplate(model.fileInfo.metadata.tokenizer?.chat_template);
    return { model, render, special, bos: model.tokens.shouldPrependBosToken ? bos : null };
  } catch (err) {
    await model.dispose();
    throw err;
  }
}

function tokenizer(modelPath: string): Promise<LoadedTokenizer> {
  let entry = tokenizers.get(modelPath);
  if (!entry) {
    entry = load(modelPath);
    tokenizers.set(modelPath, entry);
    // A failed load is not cached: the file may appear or be fixed later.
    entry.catch(() => tokenizers.delete(modelPath));
  }
  return entry;
}

function run(tok: LoadedTokenizer, prompt: TokenizeTask['prompt']): number[] {
  const { model, bos } = tok;
  switch (prompt.kind) {
    case 'chat': {
      const text = tok.render(prompt.messages, tok.special, prompt.tools);
      // Special tokens in the rendered template (`<|im_start|>`) must become their ids. Message
      // content is parsed too, as in llama.cpp's server and HF `apply_chat_template`: a client can
      // type `<|im_end|>` into content. Guardrails that care must screen for it before this point.
      const tokens = model.tokenize(text, true) as number[];
      return bos !== null && chatNeedsBos(text, tok.special, true) ? [bos, ...tokens] : tokens;
    }
    case 'text': {
      // User text is never parsed for special tokens: "<|im_end|>" typed by a client stays text.
      const tokens = model.tokenize(prompt.text, false) as number[];
      return bos !== null ? [bos, ...tokens] : tokens;
    }
    default: {
      const never: never = prompt;
      throw new InferFluxError('invalid_request', `Unknown prompt kind ${(never as { kind: string }).kind}`);
    }
  }
}

function toWire(err: unknown): WireError {
  if (err instanceof InferFluxError) return err.toWire();
  return new InferFluxError('internal_error', `Tokenizer failed: ${err instanceof Error ? err.message : String(err)}`).toWire();
}

export default async function tokenize(task: TokenizeTask): Promise<TokenizeResult> {
  try {
    return { tokens: run(await tokenizer(task.modelPath), task.prompt) };
  } catch (err) {
    throw toWire(err);
  }
}

/**
 * llama.cpp server's `/tokenize`: BOS only when asked (`add_special`), special-token text parsed
 * only when asked (`parse_special`), each token's text when asked (`with_pieces`).
 */
export async function tokenizeText(task: TokenizeTextTask): Promise<TokenizeTextResult> {
  try {
    const { model, bos } = await tokenizer(task.modelPath);
    const body = model.tokenize(task.text, task.parseSpecial) as number[];
    const tokens = task.addSpecial && bos !== null ? [bos, ...body] : body;
    if (!task.withPieces) return { tokens };
    // Streamed like generated text: the previous tokens place SentencePiece's leading spaces, and a
    // token ending inside a UTF-8 character gets '' while the next one completes it.
    const stream = new TokenTextStream((toks, last) => model.detokenize(toks as never[], true, last as never[]));
    const pieces = tokens.map((t) => stream.push(t));
    if (pieces.length > 0) pieces[pieces.length - 1] += stream.flush();
    return { tokens, pieces };
  } catch (err) {
    throw toWire(err);
  }
}

/** Ids to text, special tokens rendered as their text (the caller checked the ids against the vocabulary). */
export async function detokenize(task: DetokenizeTask): Promise<string> {
  try {
    const { model } = await tokenizer(task.modelPath);
    return model.detokenize(task.tokens as never[], true);
  } catch (err) {
    throw toWire(err);
  }
}

/** The chat prompt a generation would tokenize, as text. */
export async function applyTemplate(task: ApplyTemplateTask): Promise<string> {
  try {
    const tok = await tokenizer(task.modelPath);
    return tok.render(task.messages, tok.special);
  } catch (err) {
    throw toWire(err);
  }
}

/** Control task for `TokenizerPool.warm`/`destroy`: holds its thread until every thread has one. */
export interface BroadcastTask {
  modelPath?: string;
  /** Int32Array over a SharedArrayBuffer: [arrived]. */
  barrier: SharedArrayBuffer;
  threads: number;
  timeoutMs: number;
}

/**
 * Waits (without blocking the event loop) until `threads` broadcast tasks have arrived, so that
 * with one task per worker at a time, each of the `threads` tasks lands on a different thread.
 */
/** Node 20 has `Atomics.waitAsync`; the project's `lib` (ES2023) does not declare it yet. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number, t: number): { value: Promise<string> | string };
  }
).waitAsync;

async function barrier(task: BroadcastTask): Promise<void> {
  const cell = new Int32Array(task.barrier);
  // add + notify: arrivals are counted atomically so exactly one task sees the final count.
  if (Atomics.add(cell, 0, 1) + 1 === task.threads) {
    Atomics.notify(cell, 0);
    return;
  }
  const deadline = Date.now() + task.timeoutMs;
  for (let seen = Atomics.load(cell, 0); seen < task.threads; seen = Atomics.load(cell, 0)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new InferFluxError('internal_error', 'tokenizer broadcast timed out');
    await waitAsync(cell, 0, seen, left).value;
  }
}

/** Loads `modelPath` on this thread (pool.warm). Returns the thread id so the pool can check coverage. */
export async function warm(task: BroadcastTask): Promise<number> {
  try {
    await barrier(task);
    if (task.modelPath) await tokenizer(task.modelPath);
    return threadId;
  } catch (err) {
    throw toWire(err);
  }
}

/** Frees `modelPath`'s vocabulary on this thread (pool.release, after an unload). */
export async function release(task: BroadcastTask): Promise<number> {
  try {
    await barrier(task);
    const entry = task.modelPath === undefined ? undefined : tokenizers.get(task.modelPath);
    if (entry) {
      tokenizers.delete(task.modelPath!);
      const loaded = await entry.catch(() => null);
      await loaded?.model.dispose();
    }
    return threadId;
  } catch (err) {
    throw toWire(err);
  }
}

/**
 * Frees every model and the Llama of this thread (pool.destroy): ending a thread that still holds
 * native llama.cpp objects can abort the whole process (hazards: "Exiting with live native objects").
 */
export async function dispose(task: BroadcastTask): Promise<number> {
  try {
    await barrier(task);
    const loaded = await Promise.allSettled([...tokenizers.values()]);
    tokenizers.clear();
    for (const r of loaded) if (r.status === 'fulfilled') await r.value.model.dispose();
    const l = llama;
    llama = null;
    if (l) await (await l).dispose();
    return threadId;
  } catch (err) {
    throw toWire(err);
  }
}
