/**
 * Raw node-llama-cpp ceiling: one worker thread = one llama.cpp context of N sequences, driven
 * the ideal way with no server around it. For each round, every prompt of this worker's share is
 * prefilled together (packed into as few batches as `batchSize` allows), then one `decode()` per
 * step carries every active sequence; greedy sampling, EOS ignored (exactly `maxTokens` tokens
 * each). No HTTP, no tokenizer hop, no scheduler, no streaming: this is the throughput the same
 * model, threads and sequence count can reach, so `server / raw` is the server's efficiency.
 *
 * Uses the project's `BatchContext` so the raw loop and the engine share the same native calls.
 */
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { LlamaLogLevel, getLlama, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import { BatchContext, type BatchItem } from '../src/runtime/llama/batch-adapter.js';

export interface RawInit {
  modelPath: string;
  threads: number;
  sequences: number;
  contextSize: number;
  batchSize: number;
}

export type ToRaw =
  | { op: 'init'; init: RawInit }
  | { op: 'fit'; words: string[][]; targetTokens: number }
  | { op: 'run'; rounds: string[][]; maxTokens: number }
  | { op: 'close' };

export interface RawRequestResult {
  /** Epoch ms (timeOrigin + now) the round started and its first token was sampled. */
  roundStartMs: number;
  firstTokenMs: number;
  endMs: number;
  promptTokens: number;
  generatedTokens: number;
}

export type FromRaw =
  | { op: 'ready'; batchSize: number }
  | { op: 'fitted'; prompts: string[]; tokens: number[] }
  | { op: 'ran'; requests: RawRequestResult[] }
  | { op: 'closed' }
  | { op: 'error'; message: string };

const now = (): number => performance.timeOrigin + performance.now();

let llama: Llama | null = null;
let model: LlamaModel | null = null;
let context: LlamaContext | null = null;
let batch: BatchContext | null = null;
let sequences = 0;

function promptTokens(text: string): Uint32Array {
  // Same as the server's completions path: BOS (when the GGUF asks for it) + tokenize(text, false).
  const toks = model!.tokenize(text, false) as number[];
  const bos = model!.tokens.shouldPrependBosToken ? model!.tokens.bos : null;
  return Uint32Array.from(bos !== null ? [bos as number, ...toks] : toks);
}

async function init(i: RawInit): Promise<FromRaw> {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: i.threads });
  model = await llama.loadModel({ modelPath: i.modelPath, useMmap: true, gpuLayers: 0 });
  context = await model.createContext({
    contextSize: i.contextSize,
    sequences: i.sequences,
    batchSize: i.batchSize,
    threads: i.threads,
  });
  batch = new BatchContext(llama, model, context);
  sequences = i.sequences;
  return { op: 'ready', batchSize: context.batchSize };
}

/** Joins words until the prompt (with BOS) reaches `targetTokens` tokens. */
function fit(wordLists: string[][], targetTokens: number): FromRaw {
  const prompts: string[] = [];
  const tokens: number[] = [];
  for (const words of wordLists) {
    let text = '';
    let n = 0;
    for (const w of words) {
      const next = text === '' ? w : `${text} ${w}`;
      const m = promptTokens(next).length;
      if (m > targetTokens) break;
      text = next;
      n = m;
      if (n === targetTokens) break;
    }
    prompts.push(text);
    tokens.push(n);
  }
  return { op: 'fitted', prompts, tokens };
}

interface Active {
  seq: number;
  pos: number;
  last: number;
  generated: number;
  result: RawRequestResult;
}

type Sampler = ReturnType<BatchContext['createSampler']>;

async function runRound(prompts: string[], maxTokens: number, samplers: Sampler[]): Promise<RawRequestResult[]> {
  const b = batch!;
  const batchSize = context!.batchSize;
  const roundStartMs = now();
  const toks = prompts.map(promptTokens);
  const active: Active[] = toks.map((t, seq) => ({
    seq,
    pos: 0,
    last: -1,
    generated: 0,
    result: { roundStartMs, firstTokenMs: 0, endMs: 0, promptTokens: t.length, generatedTokens: 0 },
  }));

  // Prefill: pack every prompt into batches of at most batchSize tokens; a prompt split across
  // batches asks for logits only on its final piece.
  let pending = active.map((a) => ({ a, tokens: toks[a.seq]! }));
  while (pending.length > 0) {
    const items: BatchItem[] = [];
    const owners: Active[] = [];
    let room = batchSize;
    const rest: typeof pending = [];
    for (const p of pending) {
      if (room === 0) {
        rest.push(p);
        continue;
      }
      const take = Math.min(room, p.tokens.length);
      const piece = p.tokens.subarray(0, take);
      const done = take === p.tokens.length;
      items.push({ sequenceId: p.a.seq, position: p.a.pos, tokens: piece, wantLogits: done });
      owners.push(p.a);
      p.a.pos += take;
      room -= take;
      if (!done) rest.push({ a: p.a, tokens: p.tokens.subarray(take) });
    }
    const idx = await b.decode(items);
    await sampleAll(items, owners, idx);
    pending = rest;
  }

  // Decode: one batch per step with every sequence that still needs tokens.
  let running = active.filter((a) => a.generated < maxTokens);
  while (running.length > 0) {
    const items: BatchItem[] = running.map((a) => ({
      sequenceId: a.seq,
      position: a.pos,
      tokens: Uint32Array.of(a.last),
      wantLogits: true,
    }));
    for (const a of running) a.pos += 1;
    const idx = await b.decode(items);
    await sampleAll(items, running, idx);
    running = running.filter((a) => a.generated < maxTokens);
  }
  for (const a of active) b.clearSequence(a.seq);
  return active.map((a) => a.result);

  async function sampleAll(items: BatchItem[], owners: Active[], idx: Int32Array): Promise<void> {
    const draws: Promise<void>[] = [];
    for (let i = 0; i < items.length; i++) {
      if (idx[i]! < 0) continue;
      const a = owners[i]!;
      draws.push(
        b.sample(idx[i]!, samplers[a.seq]!).then((tok) => {
          a.last = tok;
          a.generated += 1;
          const t = now();
          if (a.generated === 1) a.result.firstTokenMs = t;
          if (a.generated === maxTokens) {
            a.result.endMs = t;
            a.result.generatedTokens = a.generated;
          }
        }),
      );
    }
    await Promise.all(draws);
  }
}

async function run(rounds: string[][], maxTokens: number): Promise<FromRaw> {
  // One sampler per sequence, as the engine does (samplings of one step run concurrently on the
  // libuv pool, so they must not share native sampler state).
  const samplers = Array.from({ length: sequences }, () => {
    const s = batch!.createSampler();
    s.applyConfig({ temperature: 0 });
    return s;
  });
  const requests: RawRequestResult[] = [];
  try {
    for (const prompts of rounds) {
      if (prompts.length > sequences) throw new Error(`round of ${prompts.length} prompts > ${sequences} sequences`);
      requests.push(...(await runRound(prompts, maxTokens, samplers)));
    }
  } finally {
    for (const s of samplers) s.dispose();
  }
  return { op: 'ran', requests };
}

async function close(): Promise<FromRaw> {
  batch?.dispose();
  // Exiting with live native objects aborts the process (notes §13): dispose everything first.
  await context?.dispose();
  await model?.dispose();
  await llama?.dispose();
  return { op: 'closed' };
}

async function handle(msg: ToRaw): Promise<FromRaw> {
  switch (msg.op) {
    case 'init':
      return init(msg.init);
    case 'fit':
      return fit(msg.words, msg.targetTokens);
    case 'run':
      return run(msg.rounds, msg.maxTokens);
    case 'close':
      return close();
    default: {
      const never: never = msg;
      throw new Error(`raw worker: unknown op ${JSON.stringify(never)}`);
    }
  }
}

parentPort!.on('message', (msg: ToRaw) => {
  handle(msg).then(
    (reply) => parentPort!.postMessage(reply),
    (err: unknown) => parentPort!.postMessage({ op: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies FromRaw),
  );
});
