/**
 * Child process of test/unit/persistent-threadpool.test.ts: loads the persistent thread pool (or
 * not: argv[3] is "persistent" or "per_step") before node-llama-cpp, as the server does, then
 * decodes a prompt greedily on a 2-thread context of the model at argv[2] and prints one JSON line:
 * the pool's stats after the context opened and after it was disposed, the tokens, and at each
 * step the greedy draw on this thread (BatchContext.sampleGreedy) against llama.cpp's sampler:
 * plain, and with the native pick banned (a -Infinity bias natively, `banned` on this thread).
 */
import { loadPersistentThreadpool, type PersistentThreadpool } from '../../src/runtime/llama/threadpool/addon.js';

const [modelPath, mode] = process.argv.slice(2) as [string, string];
let pool: PersistentThreadpool | null = null;
if (mode === 'persistent') {
  const loaded = loadPersistentThreadpool(0);
  if ('unavailable' in loaded) throw new Error(loaded.unavailable);
  pool = loaded;
}
const { LlamaLogLevel, getLlama } = await import('node-llama-cpp');
const { BatchContext } = await import('../../src/runtime/llama/batch-adapter.js');
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 2 });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 256, sequences: 1, batchSize: 64, threads: 2 });
const batch = new BatchContext(llama, model, context);
const opened = pool?.stats() ?? null;
const sampler = batch.createSampler();
sampler.applyConfig({ temperature: 0 });
const prompt = [model.tokens.bos!, ...model.tokenize('The persistent pool must not change a single token.', false)];
const banning = batch.createSampler();
const tokens: number[] = [];
const draws: { plain: number; banned: number; nativeBanned: number }[] = [];
let [idx] = await batch.decode([{ sequenceId: 0, position: 0, tokens: Uint32Array.from(prompt), wantLogits: true }]);
for (let i = 0; i < 16; i++) {
  // Alternate 1 and 2 threads: a pool sized for 2 serves 1-thread steps too.
  batch.setThreads(1 + (i % 2));
  // Drawn before any native sample of the batch is in flight, as the engine does.
  const plain = batch.sampleGreedy(idx!, new Uint32Array(0));
  const tok = await batch.sample(idx!, sampler);
  const banned = batch.sampleGreedy(idx!, Uint32Array.of(tok));
  banning.applyConfig({ temperature: 0, tokenBiasKeys: Uint32Array.of(tok), tokenBiasValues: Float32Array.of(-Infinity) });
  draws.push({ plain, banned, nativeBanned: await batch.sample(idx!, banning) });
  tokens.push(tok);
  [idx] = await batch.decode([{ sequenceId: 0, position: prompt.length + i, tokens: Uint32Array.of(tok), wantLogits: true }]);
}
sampler.dispose();
banning.dispose();
batch.dispose();
await context.dispose();
const disposed = pool?.stats() ?? null;
await model.dispose();
await llama.dispose();
process.stdout.write(`${JSON.stringify({ opened, disposed, tokens, draws })}\n`);
