/**
 * Host side of the raw ceiling: W worker threads (`raw-ceiling-worker.ts`), each with its own
 * getLlama + model + context, exactly like the server's engine workers. A level of `clients`
 * closed-loop clients is mapped onto them the way an ideal scheduler would: client i runs on
 * worker i % W, and every "round" (one request per client) is prefilled together and decoded in
 * lockstep, one batch per step.
 */
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { FromRaw, RawInit, RawRequestResult, ToRaw } from './raw-ceiling-worker.js';

export interface RawLevelResult {
  clients: number;
  wallMs: number;
  requests: { ttftMs: number; promptTokens: number; completionTokens: number }[];
}

class RawWorker {
  private readonly worker: Worker;
  private waiting: { resolve: (m: FromRaw) => void; reject: (e: Error) => void } | null = null;
  private exited = false;

  constructor() {
    // `--import tsx` in a worker's execArgv does not apply to the worker's own entry file on Node
    // 20 (ERR_UNKNOWN_FILE_EXTENSION), so a tiny eval entry registers tsx, then imports the worker.
    const tsx = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./raw-ceiling-worker.ts', import.meta.url).href;
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
    this.worker = new Worker(code, { eval: true });
    this.worker.on('message', (m: FromRaw) => {
      const w = this.waiting;
      this.waiting = null;
      if (!w) return;
      if (m.op === 'error') w.reject(new Error(`raw worker: ${m.message}`));
      else w.resolve(m);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      this.exited = true;
      this.fail(new Error(`raw worker exited with code ${code}`));
    });
  }

  private fail(err: Error): void {
    const w = this.waiting;
    this.waiting = null;
    w?.reject(err);
  }

  call<Op extends FromRaw['op']>(msg: ToRaw, expect: Op): Promise<Extract<FromRaw, { op: Op }>> {
    if (this.exited) return Promise.reject(new Error('raw worker has exited'));
    if (this.waiting) return Promise.reject(new Error('raw worker is busy'));
    return new Promise((resolve, reject) => {
      this.waiting = {
        resolve: (m) => (m.op === expect ? resolve(m as Extract<FromRaw, { op: Op }>) : reject(new Error(`raw worker replied ${m.op}, expected ${expect}`))),
        reject,
      };
      this.worker.postMessage(msg);
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    try {
      await this.call({ op: 'close' }, 'closed');
    } finally {
      await this.worker.terminate();
    }
  }
}

export class RawCeiling {
  private constructor(
    private readonly workers: RawWorker[],
    readonly init: RawInit,
  ) {}

  static async start(workers: number, init: RawInit): Promise<RawCeiling> {
    const list = Array.from({ length: workers }, () => new RawWorker());
    const raw = new RawCeiling(list, init);
    try {
      await Promise.all(list.map((w) => w.call({ op: 'init', init }, 'ready')));
    } catch (err) {
      await raw.close();
      throw err;
    }
    return raw;
  }

  /** Fits each word list to `targetTokens` prompt tokens (BOS included), as the server counts them. */
  async fit(words: string[][], targetTokens: number): Promise<{ prompts: string[]; tokens: number[] }> {
    const r = await this.workers[0]!.call({ op: 'fit', words, targetTokens }, 'fitted');
    return { prompts: r.prompts, tokens: r.tokens };
  }

  /** prompts[client][i]: same layout as the server load generator. */
  async runLevel(clients: number, requestsPerClient: number, prompts: string[][], maxTokens: number): Promise<RawLevelResult> {
    const W = this.workers.length;
    if (clients > W * this.init.sequences) throw new Error(`${clients} clients > ${W} workers x ${this.init.sequences} sequences`);
    const jobs: { worker: RawWorker; rounds: string[][] }[] = [];
    for (let w = 0; w < W; w++) {
      const mine = Array.from({ length: clients }, (_, c) => c).filter((c) => c % W === w);
      if (mine.length === 0) continue;
      const rounds = Array.from({ length: requestsPerClient }, (_, i) => mine.map((c) => prompts[c]![i]!));
      jobs.push({ worker: this.workers[w]!, rounds });
    }
    const t0 = performance.timeOrigin + performance.now();
    const replies = await Promise.all(jobs.map((j) => j.worker.call({ op: 'run', rounds: j.rounds, maxTokens }, 'ran')));
    const all: RawRequestResult[] = replies.flatMap((r) => r.requests);
    const end = all.reduce((m, r) => Math.max(m, r.endMs), t0);
    return {
      clients,
      wallMs: end - t0,
      requests: all.map((r) => ({
        ttftMs: r.firstTokenMs - r.roundStartMs,
        promptTokens: r.promptTokens,
        completionTokens: r.generatedTokens,
      })),
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.close()));
  }
}
