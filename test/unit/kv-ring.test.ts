/**
 * The SharedArrayBuffer KV channel: single-thread behaviour (fill, wrap, reject, order) and a
 * multi-producer run across worker threads with checksummed payloads. No timing assertions here:
 * latency is measured by bench/kv-ring.ts.
 */
import { expect } from 'chai';
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { pack } from '../../src/actors/protocol.js';
import { tsxEsmApiUrl } from '../helpers/ts-worker.js';
import {
  KV_RING_GRANULE,
  KvFrameTooLargeError,
  KvRing,
  KvRingConsumer,
  KvRingProducer,
} from '../../src/runtime/kv/kv-ring.js';

const G = KV_RING_GRANULE;

/** Deterministic payload bytes for (producer, index). */
function payload(producer: number, index: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (producer * 1_000_003 + index * 7919 + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

interface Ticket {
  id: string;
  producer: number;
  index: number;
  crc: number;
}

/** State length such that the frame takes exactly `granules` granules (with the header below). */
function stateFor(header: unknown, granules: number): number {
  const n = granules * G - 8 - pack(header).byteLength;
  expect(KvRing.frameBytes(pack(header).byteLength, n)).to.equal(granules * G);
  return n;
}

describe('KvRing (SharedArrayBuffer KV channel)', () => {
  describe('single thread', () => {
    it('create() validates and rounds the size; the buffer only opens as a ring', () => {
      expect(() => KvRing.create(10)).to.throw(RangeError);
      expect(() => KvRing.create(2 ** 31)).to.throw(RangeError);
      expect(() => KvRing.create(1.5 * G)).to.not.throw();
      const c = new KvRingConsumer(KvRing.create(G + 1));
      expect(c.capacity).to.equal(2 * G);
      expect(() => new KvRingProducer(new SharedArrayBuffer(4096))).to.throw(TypeError, /not a KV ring/);
    });

    it('an empty ring reads null; frames come back in order with header and state intact', () => {
      const sab = KvRing.create(64 * 1024);
      const p = new KvRingProducer(sab);
      const c = new KvRingConsumer(sab);
      expect(c.read()).to.equal(null);
      const sent = [0, 1, 2, 3].map((i) => ({
        header: { id: `req-${i}`, model: 'tiny', promptTokens: 10 + i, firstToken: 42 + i, sampling: { temperature: 0.7, stop: ['\n'] } },
        state: payload(0, i, 1000 * i + 3),
      }));
      for (const f of sent) expect(p.tryWrite(f.header, f.state)).to.equal(true);
      for (const f of sent) {
        const got = c.read();
        expect(got).to.not.equal(null);
        expect(got!.header).to.deep.equal(f.header);
        expect(Buffer.from(got!.state).equals(Buffer.from(f.state))).to.equal(true);
        expect(() => c.read()).to.throw(/release\(\) the previous frame/);
        c.release();
      }
      expect(c.read()).to.equal(null);
      expect(() => c.release()).to.throw(/no frame held/);
      expect(p.usedBytes()).to.equal(0);
    });

    it('a full ring rejects a frame without writing anything; freeing one frame makes room', () => {
      const sab = KvRing.create(8 * G);
      const p = new KvRingProducer(sab);
      const c = new KvRingConsumer(sab);
      const n = stateFor({ id: 'f0' }, 2);
      let written = 0;
      while (p.tryWrite({ id: `f${written}` }, payload(0, written, n))) written++;
      expect(written).to.equal(4);
      expect(p.usedBytes()).to.equal(8 * G);
      expect(p.tryWrite({ id: 'tiny' }, new Uint8Array(0))).to.equal(false);
      const first = c.read();
      expect(first!.header).to.deep.equal({ id: 'f0' });
      c.release();
      expect(p.tryWrite({ id: 'f4' }, payload(0, 4, n))).to.equal(true);
      expect(p.tryWrite({ id: 'f5' }, payload(0, 5, n))).to.equal(false);
      const order: string[] = [];
      for (let f = c.read<{ id: string }>(); f; f = c.read<{ id: string }>()) {
        order.push(f.header.id);
        c.release();
      }
      expect(order).to.deep.equal(['f1', 'f2', 'f3', 'f4']);
    });

    it('a frame larger than the whole ring is an immediate error, not a blocked ticket', () => {
      const sab = KvRing.create(4 * G);
      const p = new KvRingProducer(sab);
      expect(() => p.tryWrite({}, new Uint8Array(4 * G))).to.throw(KvFrameTooLargeError, /can never fit/);
      try {
        p.tryWrite({}, new Uint8Array(4 * G));
      } catch (e) {
        expect((e as KvFrameTooLargeError).code).to.equal('IFX_KV_FRAME_TOO_LARGE');
      }
      // Exactly the ring size fits an empty ring.
      expect(p.tryWrite({}, new Uint8Array(stateFor({}, 4)))).to.equal(true);
    });

    it('frames wrap around the end with a skip marker, over many laps, intact and in order', () => {
      const sab = KvRing.create(16 * G);
      const p = new KvRingProducer(sab);
      const c = new KvRingConsumer(sab);
      const pending: { index: number; length: number }[] = [];
      let next = 0;
      let checked = 0;
      let blocked = 0;
      let rnd = 12345;
      const rand = (m: number): number => ((rnd = (Math.imul(rnd, 1_103_515_245) + 12_345) >>> 0) % m);
      while (checked < 2000) {
        // Write a few frames of 0..7 granules, then read a few: the ring is often full and often wraps.
        for (let k = rand(4); k >= 0; k--) {
          const length = rand(7 * G);
          if (p.tryWrite({ index: next }, payload(1, next, length))) pending.push({ index: next++, length });
          else blocked++;
        }
        for (let k = rand(4); k >= 0; k--) {
          const f = c.read<{ index: number }>();
          if (!f) {
            expect(pending.length).to.equal(0);
            break;
          }
          const want = pending.shift()!;
          expect(f.header.index).to.equal(want.index);
          expect(Buffer.from(f.state).equals(Buffer.from(payload(1, want.index, want.length)))).to.equal(true);
          c.release();
          checked++;
        }
      }
      expect(blocked).to.be.greaterThan(0);
      // bytes moved >> capacity: many laps
      expect(checked * 3 * G).to.be.greaterThan(100 * 16 * G);
    });

    it('a frame that cannot fit from the current position moves the cursor to 0 with a skip, then fits', () => {
      const sab = KvRing.create(8 * G);
      const p = new KvRingProducer(sab);
      const c = new KvRingConsumer(sab);
      // Park the cursor in the middle: write and free 3 granules.
      expect(p.tryWrite({ n: 0 }, new Uint8Array(stateFor({ n: 0 }, 3)))).to.equal(true);
      c.read();
      c.release();
      // 6 granules cannot fit in the 5-granule tail, and 5 + 6 > 8 would never fit: a skip is
      // reserved for the tail and the frame reports blocked until the consumer frees the skip.
      const big = payload(2, 0, stateFor({ n: 1 }, 6));
      expect(p.tryWrite({ n: 1 }, big)).to.equal(false);
      expect(c.read()).to.equal(null); // consumes the skip
      expect(p.tryWrite({ n: 1 }, big)).to.equal(true);
      const f = c.read();
      expect(f!.header).to.deep.equal({ n: 1 });
      expect(Buffer.from(f!.state).equals(Buffer.from(big))).to.equal(true);
      c.release();
      expect(p.usedBytes()).to.equal(0);
    });

    it('waitForData resolves on a commit, times out with false, and close() ends it', async () => {
      const sab = KvRing.create(4 * G);
      const p = new KvRingProducer(sab);
      const c = new KvRingConsumer(sab);
      expect(await c.waitForData(20)).to.equal(false);
      const waiting = c.waitForData();
      setTimeout(() => p.tryWrite({ id: 'late' }, new Uint8Array(10)), 5);
      expect(await waiting).to.equal(true);
      expect(await c.waitForData(1000)).to.equal(true); // already there: resolves at once
      expect(c.read()!.header).to.deep.equal({ id: 'late' });
      // While a frame is held, waitForData looks past it.
      expect(await c.waitForData(10)).to.equal(false);
      c.release();
      const pending = c.waitForData();
      c.close();
      expect(await pending).to.equal(false);
    });

    it('waitForSpace resolves once the consumer frees a frame after a blocked write', async () => {
      const sab = KvRing.create(2 * G);
      const p = new KvRingProducer(sab);
      const c = new KvRingConsumer(sab);
      const n = stateFor({}, 2);
      expect(p.tryWrite({}, new Uint8Array(n))).to.equal(true);
      expect(p.tryWrite({}, new Uint8Array(n))).to.equal(false);
      expect(await p.waitForSpace(20)).to.equal(false);
      const space = p.waitForSpace();
      setTimeout(() => {
        c.read();
        c.release();
      }, 5);
      expect(await space).to.equal(true);
      expect(p.tryWrite({}, new Uint8Array(n))).to.equal(true);
    });

    it('the state view can be written straight to a file (the decode worker stages it on tmpfs)', () => {
      const sab = KvRing.create(64 * 1024);
      const p = new KvRingProducer(sab);
      const c = new KvRingConsumer(sab);
      const state = payload(3, 3, 40_000);
      p.tryWrite({ id: 'f' }, state);
      const dir = mkdtempSync(join(tmpdir(), 'ifx-kvring-'));
      try {
        const f = c.read()!;
        writeFileSync(join(dir, 's.bin'), f.state);
        c.release();
        expect(Buffer.from(readFileSync(join(dir, 's.bin'))).equals(Buffer.from(state))).to.equal(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('threads', function () {
    this.timeout(60_000);

    /** An eval worker that registers tsx (see bench/raw-ceiling.ts for why), imports the ring as `ring`, then runs `body`. */
    function ringWorker(body: string, workerData: unknown): Worker {
      const tsx = tsxEsmApiUrl();
      const ringUrl = new URL('../../src/runtime/kv/kv-ring.ts', import.meta.url).href;
      const code = `
        const { workerData, parentPort } = require('node:worker_threads');
        const { crc32 } = require('node:zlib');
        ${payload.toString()}
        (async () => {
          (await import(${JSON.stringify(tsx)})).register();
          const ring = await import(${JSON.stringify(ringUrl)});
          ${body}
        })().catch((e) => { parentPort.postMessage({ error: String(e && e.stack || e) }); });
      `;
      return new Worker(code, { eval: true, workerData });
    }

    function startProducer(sab: SharedArrayBuffer, producer: number, frames: number, maxBytes: number): Worker {
      return ringWorker(
        `
          const { sab, producer, frames, maxBytes } = workerData;
          const p = new ring.KvRingProducer(sab);
          let blocked = 0;
          for (let index = 0; index < frames; index++) {
            const state = payload(producer, index, (index * 7919 + producer * 131) % maxBytes);
            const header = { id: 'p' + producer + '-' + index, producer, index, crc: crc32(state) };
            while (!p.tryWrite(header, state)) {
              blocked++;
              await p.waitForSpace(1000);
            }
          }
          parentPort.postMessage({ blocked });`,
        { sab, producer, frames, maxBytes },
      );
    }

    it('a thread whose only pending work is waitForData/waitForSpace stays alive until they resolve', async () => {
      const sab = KvRing.create(2 * G);
      const w = ringWorker(
        `
          const c = new ring.KvRingConsumer(workerData.sab);
          const p = new ring.KvRingProducer(workerData.sab);
          p.tryWrite({}, new Uint8Array(${2 * G - 16}));
          p.tryWrite({}, new Uint8Array(10));
          const space = await p.waitForSpace(50);
          c.read(); c.release();
          const data = await c.waitForData(50);
          parentPort.postMessage({ space, data });`,
        { sab },
      );
      const result = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`worker exited (${code}) while waiting`)));
      });
      expect(result).to.deep.equal({ space: false, data: false });
      await w.terminate();
    });

    it('3 producer threads x 300 frames into one consumer: every frame exactly once, intact, in per-producer order', async () => {
      const producers = 3;
      const frames = 300;
      const maxBytes = 48 * 1024;
      const sab = KvRing.create(256 * 1024); // ~10 frames: producers block and the ring wraps often
      const c = new KvRingConsumer(sab);
      const workers = Array.from({ length: producers }, (_, i) => startProducer(sab, i, frames, maxBytes));
      const done = workers.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            w.once('message', (m: { blocked?: number; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m.blocked!)));
            w.once('error', reject);
            w.once('exit', (code) => reject(new Error(`producer exited (${code}) before reporting`)));
          }),
      );
      let failure: unknown = null;
      for (const d of done) d.catch((e: unknown) => (failure ??= e));
      const nextIndex = new Array<number>(producers).fill(0);
      const seen = new Set<string>();
      let received = 0;
      const deadline = Date.now() + 45_000;
      try {
        while (received < producers * frames) {
          if (failure) throw failure;
          if (Date.now() > deadline) throw new Error(`timed out after ${received} frames`);
          const f = c.read<Ticket>();
          if (!f) {
            await c.waitForData(500);
            continue;
          }
          const { id, producer, index, crc } = f.header;
          expect(seen.has(id), `duplicate ${id}`).to.equal(false);
          seen.add(id);
          expect(index, `order of producer ${producer}`).to.equal(nextIndex[producer]);
          nextIndex[producer]!++;
          expect(f.state.byteLength).to.equal((index * 7919 + producer * 131) % maxBytes);
          expect(crc32(f.state), `checksum of ${id}`).to.equal(crc);
          c.release();
          received++;
        }
        const blocked = await Promise.all(done);
        expect(c.read()).to.equal(null);
        expect(received).to.equal(producers * frames);
        // Not a correctness requirement, but the ring was sized so blocking is exercised.
        expect(blocked.reduce((a, b) => a + b, 0)).to.be.greaterThan(0);
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    });
  });
});
