/**
 * The embedding pool's decisions, with no threads, ports or timers (the pool shell in pool.ts does
 * the I/O): which worker runs a job, which jobs wait (a bounded FIFO), what a worker takes when it
 * becomes free, and what a lost worker leaves behind. One job per worker at a time: each worker's
 * embedding context evaluates one sequence anyway (node-llama-cpp serialises it with a lock).
 */

export type Submitted = { kind: 'run'; worker: number } | { kind: 'queued' } | { kind: 'full' };

export class EmbeddingDispatch<J> {
  private readonly waiting: J[] = [];
  /** Job per worker index; undefined = idle; absent = not ready. */
  private readonly running = new Map<number, J | undefined>();

  constructor(private readonly maxQueue: number) {}

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.waiting.length;
  }

  /** A worker is ready for work; returns the job it should run now, if any. */
  workerReady(worker: number): J | undefined {
    const job = this.waiting.shift();
    this.running.set(worker, job);
    return job;
  }

  /** A new job runs on an idle worker, waits if the queue has room, or is refused. */
  submit(job: J): Submitted {
    for (const [worker, current] of this.running) {
      if (current === undefined) {
        this.running.set(worker, job);
        return { kind: 'run', worker };
      }
    }
    if (this.waiting.length >= this.maxQueue) return { kind: 'full' };
    this.waiting.push(job);
    return { kind: 'queued' };
  }

  /** The worker answered its job; returns its next one, if any. */
  finished(worker: number): J | undefined {
    return this.workerReady(worker);
  }

  /** A waiting job whose client left; false when it is already running (it finishes). */
  withdraw(job: J): boolean {
    const i = this.waiting.indexOf(job);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    return true;
  }

  /** The worker died or is stopping: returns the job it was running, if any. */
  workerLost(worker: number): J | undefined {
    const job = this.running.get(worker);
    this.running.delete(worker);
    return job;
  }

  /** Everything still waiting, removed (shutdown, or no worker can start). */
  drain(): J[] {
    return this.waiting.splice(0);
  }

  /** Ready workers (idle or busy). */
  get workers(): number {
    return this.running.size;
  }
}
