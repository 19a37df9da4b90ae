/**
 * KV ring transfer latency: a producer worker thread writes frames of sequence-state size, the
 * main thread (the decode worker's role) waits with `waitForData()` and reads them. One frame in
 * flight at a time, so this is latency, not queueing. Times are wall clock across threads
 * (`performance.timeOrigin + performance.now()`).
 *
 *   write→view   tryWrite() start → consumer holds the frame (copy in + commit + waitAsync wake-up)
 *   write→copy   … → state copied out of the ring (`slice()`)
 *   write→shm    … → state written to a /dev/shm file (what loadSequence() reads)
 *
 * Usage: node --import tsx bench/kv-ring.ts [iterations for 2 MB] [iterations for 46 MB]
 * 46 MB ≈ a 2k-token prompt of the bench model (23 KB/token, notes §13).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { KvRing, KvRingConsumer, KvRingProducer } from '../src/runtime/kv/kv-ring.js';
import { summarize } from './stats.js';

interface Job {
  sab: SharedArrayBuffer;
  bytes: number;
  count: number;
}

const now = (): number => performance.timeOrigin + performance.now();

async function producer({ sab, bytes, count }: Job): Promise<void> {
  const p = new KvRingProducer(sab);
  const state = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) state[i] = i & 0xff;
  for (let i = 0; i < count; i++) {
    // Wait until the previous frame is freed: one frame in flight.
    while (p.usedBytes() > 0) await p.waitForSpace(1000);
    const header = { id: `req-${i}`, model: 'bench', promptTokens: 2048, firstToken: 17, sampling: { temperature: 0 }, t0: now() };
    while (!p.tryWrite(header, state)) await p.waitForSpace(1000);
    // Leave the consumer idle in waitForData before the next frame, as between real tickets.
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function measure(bytes: number, count: number, ringBytes: number, shmDir: string): Promise<void> {
  const sab = KvRing.create(ringBytes);
  const c = new KvRingConsumer(sab);
  const tsx = import.meta.resolve('tsx/esm/api');
  const self = new URL(import.meta.url).href;
  const w = new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); })`, {
    eval: true,
    workerData: { sab, bytes, count } satisfies Job,
  });
  const failed = new Promise<never>((_, reject) => w.once('error', reject));
  const view: number[] = [];
  const copy: number[] = [];
  const shm: number[] = [];
  const file = join(shmDir, 'state.bin');
  for (let i = 0; i < count; i++) {
    let f = c.read<{ t0: number }>();
    while (!f) {
      await Promise.race([c.waitForData(), failed]);
      f = c.read<{ t0: number }>();
    }
    const t0 = f.header.t0;
    view.push(now() - t0);
    const copied = f.state.slice();
    copy.push(now() - t0);
    writeFileSync(file, f.state);
    shm.push(now() - t0);
    c.release();
    if (copied.byteLength !== bytes) throw new Error('short frame');
  }
  await w.terminate();
  const fmt = (xs: number[]): string => {
    const s = summarize(xs);
    return `p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms`;
  };
  const mb = (bytes / 2 ** 20).toFixed(0);
  console.log(`${mb.padStart(3)} MB × ${count}  write→view ${fmt(view)} | write→copy ${fmt(copy)} | write→shm ${fmt(shm)}`);
}

async function main(): Promise<void> {
  const n2 = Number(process.argv[2] ?? 200);
  const n46 = Number(process.argv[3] ?? 40);
  const shmDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ifx-kvring-bench-'));
  try {
    await measure(2 * 2 ** 20, n2, 16 * 2 ** 20, shmDir);
    await measure(46 * 2 ** 20, n46, 128 * 2 ** 20, shmDir);
  } finally {
    rmSync(shmDir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  await main();
} else {
  await producer(workerData as Job);
  parentPort?.postMessage('done');
}
