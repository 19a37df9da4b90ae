/**
 * The KV channel: a multi-producer, single-consumer byte ring over one SharedArrayBuffer per decode
 * worker (DESIGN §3). Prefill workers write frames `msgpackr ticket header + raw sequence-state
 * bytes`; the decode worker reads them in reservation order. No locks, no copies through ports.
 *
 * ```
 * byte 0     i32 magic 'KVR1' | i32 version | i32 capacity (data bytes) | i32 granule   create(); read-only after
 * byte 64    i64 reserve cursor   absolute bytes ever reserved        producers (CAS)
 * byte 128   i64 read cursor      absolute bytes ever freed           consumer (store)
 * byte 192   i32 data seq         +1 per committed frame / skip       producers (add); consumer waits on it
 * byte 256   i32 free seq         +1 per freed frame                  consumer (add); producers wait on it
 * byte 320   i32 commit[capacity / granule]                           see below
 * (64-aligned) data[capacity]                                         the owning producer, then the consumer
 *
 * A frame starts on a granule boundary at data[pos] and spans n whole granules:
 *   u32 header length H | u32 state length S | H bytes msgpackr header | S bytes state | padding
 * commit[pos / granule]:  0 = nothing committed here (yet)
 *                        +n = a frame of n granules is complete            producer stores, last
 *                        -n = skip n granules (the tail before a wrap)     producer stores
 *                         0 again when the consumer frees it               consumer stores
 * ```
 *
 * Cursors are absolute byte counts (i64, never wrap in practice); a position is `cursor % capacity`.
 * Empty: read == reserve. Full: reserve - read == capacity. A frame needs its n granules
 * contiguously, so one that would cross the end reserves the tail as a skip plus n granules from 0.
 * A frame that does not fit in the free space is refused at once (`tryWrite` returns false: a
 * "blocked ticket"; the caller counts it and retries, e.g. after `waitForSpace()`); a frame larger
 * than the whole ring throws `KvFrameTooLargeError`, since no retry can help.
 *
 * Why commit words live outside the data: a new frame can start anywhere in space that held old
 * payload bytes, so an inline flag could read as "committed" from stale data. commit[] entries are
 * only ever set at frame starts and zeroed when their frame is freed, so every entry in free space
 * is 0 and the consumer can trust what it reads at the read cursor.
 *
 * Ownership of a reserved range: only the producer whose CAS reserved it writes into it, until it
 * stores the commit word; after that only the consumer touches it, until it advances the read cursor.
 *
 * Consumer read API: `read()` returns the header and a *view* of the state in shared memory, valid
 * until `release()`; there is at most one frame held at a time. Copy it (`state.slice()`) to keep it.
 * A 2k-token prompt of the bench model is ~46 MB of state (notes §13): size the ring for a few of
 * those; frames are not split.
 */
import { pack, unpack } from '../frame-codec.js';

const MAGIC = 0x3152564b; // 'KVR1' little-endian
const VERSION = 1;
/** Frame alignment and commit-word granularity: 1.6% of the data size in commit words. */
export const KV_RING_GRANULE = 256;
const FRAME_HEAD = 8;
/** Byte offsets of the control words (each on its own 64-byte line: producers and consumer do not share lines). */
const OFF_INFO = 0;
const OFF_RESERVE = 64;
const OFF_READ = 128;
const OFF_DATA_SEQ = 192;
const OFF_FREE_SEQ = 256;
const OFF_COMMIT = 320;
/** Data capacity limit: commit values are i32 granule counts and positions stay well inside 2^53. */
export const KV_RING_MAX_CAPACITY = 2 ** 31 - KV_RING_GRANULE;

/** Node 20 has Atomics.waitAsync; TypeScript's ES2023 lib does not declare it. */
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as {
  waitAsync(ta: Int32Array, index: number, value: number, timeout?: number): WaitAsyncResult;
}).waitAsync;

const noop = (): void => {};

/**
 * Atomics.waitAsync that keeps the thread alive while it waits: a pending waitAsync holds no libuv
 * handle (Node 20: a worker whose only pending work is one exits), so a ref'd timer spans the wait.
 */
async function waitOn(ta: Int32Array, index: number, value: number, timeoutMs: number): Promise<'ok' | 'not-equal' | 'timed-out'> {
  const r = waitAsync(ta, index, value, timeoutMs);
  if (!r.async) return r.value;
  const keepAlive = setInterval(noop, Math.min(timeoutMs, 2 ** 30));
  try {
    return await r.value;
  } finally {
    clearInterval(keepAlive);
  }
}

export class KvFrameTooLargeError extends RangeError {
  readonly code = 'IFX_KV_FRAME_TOO_LARGE';
  constructor(frameBytes: number, capacity: number) {
    super(`KV frame of ${frameBytes} bytes can never fit a KV ring of ${capacity} bytes; raise the ring size`);
    this.name = 'KvFrameTooLargeError';
  }
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Typed views over one ring buffer, shared by both ends. */
class RingViews {
  readonly capacity: number;
  readonly capBig: bigint;
  readonly granule: number;
  readonly cursors: BigInt64Array; // [0] reserve, [1] read
  readonly seqs: Int32Array; // [0] data seq, [16] free seq (256 - 192 = 64 bytes apart)
  readonly commit: Int32Array;
  readonly data: Uint8Array;
  readonly dataView: DataView;

  constructor(readonly sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < OFF_COMMIT) throw new TypeError('not a KV ring buffer');
    const info = new Int32Array(sab, OFF_INFO, 4);
    if (info[0] !== MAGIC || info[1] !== VERSION) throw new TypeError('not a KV ring buffer (bad magic or version)');
    this.capacity = info[2]!;
    this.granule = info[3]!;
    this.capBig = BigInt(this.capacity);
    const slots = this.capacity / this.granule;
    this.cursors = new BigInt64Array(sab, OFF_RESERVE, (OFF_READ - OFF_RESERVE) / 8 + 1);
    this.seqs = new Int32Array(sab, OFF_DATA_SEQ, (OFF_FREE_SEQ - OFF_DATA_SEQ) / 4 + 1);
    this.commit = new Int32Array(sab, OFF_COMMIT, slots);
    const dataOff = dataOffset(slots);
    if (sab.byteLength !== dataOff + this.capacity) throw new TypeError('KV ring buffer has the wrong size');
    this.data = new Uint8Array(sab, dataOff, this.capacity);
    this.dataView = new DataView(sab, dataOff, this.capacity);
  }
}

const RESERVE = 0;
const READ = (OFF_READ - OFF_RESERVE) / 8;
const DATA_SEQ = 0;
const FREE_SEQ = (OFF_FREE_SEQ - OFF_DATA_SEQ) / 4;

function dataOffset(slots: number): number {
  return alignUp(OFF_COMMIT + 4 * slots, 64);
}

export const KvRing = {
  /**
   * Allocate a ring with `bytes` of frame space (rounded up to the granule). Pass the buffer to
   * each producer and to the one consumer (postMessage shares it, it does not copy).
   */
  create(bytes: number): SharedArrayBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < KV_RING_GRANULE || bytes > KV_RING_MAX_CAPACITY) {
      throw new RangeError(`KV ring size must be ${KV_RING_GRANULE}..${KV_RING_MAX_CAPACITY} bytes, got ${bytes}`);
    }
    const capacity = alignUp(bytes, KV_RING_GRANULE);
    const slots = capacity / KV_RING_GRANULE;
    const sab = new SharedArrayBuffer(dataOffset(slots) + capacity);
    // Plain stores: nobody else has the buffer yet; postMessage publishes it.
    new Int32Array(sab, OFF_INFO, 4).set([MAGIC, VERSION, capacity, KV_RING_GRANULE]);
    return sab;
  },

  /** Bytes of ring space a frame takes (header + state + framing, rounded to the granule). */
  frameBytes(headerBytes: number, stateBytes: number): number {
    return alignUp(FRAME_HEAD + headerBytes + stateBytes, KV_RING_GRANULE);
  },
} as const;

export class KvRingProducer {
  private readonly v: RingViews;
  /** free seq as loaded at the start of the last tryWrite, for a lost-wake-up-free waitForSpace(). */
  private freeSeqSeen = 0;

  constructor(sab: SharedArrayBuffer) {
    this.v = new RingViews(sab);
  }

  get capacity(): number {
    return this.v.capacity;
  }

  /**
   * Append one frame. Returns false, having written nothing, when the free space cannot hold it
   * now (a blocked ticket: retry later). Throws `KvFrameTooLargeError` when it could never fit.
   * Safe to call from any number of threads at once.
   */
  tryWrite(header: unknown, state: Uint8Array): boolean {
    const { capacity, capBig, granule, cursors, seqs, commit, data, dataView } = this.v;
    const head = pack(header);
    const frameBytes = FRAME_HEAD + head.byteLength + state.byteLength;
    const size = alignUp(frameBytes, granule);
    if (size > capacity) throw new KvFrameTooLargeError(frameBytes, capacity);
    // Loaded before looking at the space, so any release after this makes waitForSpace return at once.
    this.freeSeqSeen = Atomics.load(seqs, FREE_SEQ);

    for (;;) {
      // Read cursor first, then reserve: read only grows, so `free` can only be underestimated (a
      // spurious "blocked", never an overrun); the CAS then proves `reserve` did not move.
      // seq-cst load: pairs with the consumer's store, so the commit[] zeroing it did before
      // advancing is visible to us before we reuse that space.
      const read = Atomics.load(cursors, READ);
      const reserve = Atomics.load(cursors, RESERVE);
      const free = capacity - Number(reserve - read);
      const pos = Number(reserve % capBig);
      const tail = capacity - pos;
      const skip = size > tail ? tail : 0;

      if (skip + size > free) {
        // From here the frame needs more than the whole ring (skip + size > capacity), so waiting
        // never helps: reserve just the tail as a skip to move the cursor to 0, and try again.
        if (skip > 0 && skip + size > capacity && skip <= free) {
          if (Atomics.compareExchange(cursors, RESERVE, reserve, reserve + BigInt(skip)) !== reserve) continue;
          Atomics.store(commit, pos / granule, -(skip / granule));
          // The consumer must wake to free the skip, or the space it holds is never returned.
          Atomics.add(seqs, DATA_SEQ, 1);
          Atomics.notify(seqs, DATA_SEQ, 1);
          continue;
        }
        return false;
      }
      // CAS: the reservation itself; whoever wins owns [reserve, reserve + skip + size).
      if (Atomics.compareExchange(cursors, RESERVE, reserve, reserve + BigInt(skip + size)) !== reserve) continue;

      // A skip has no payload, so it is committed at once (store: publishes to the consumer).
      if (skip > 0) Atomics.store(commit, pos / granule, -(skip / granule));
      const at = skip > 0 ? 0 : pos;
      // Plain writes into space we own; the commit store below publishes them.
      dataView.setUint32(at, head.byteLength, true);
      dataView.setUint32(at + 4, state.byteLength, true);
      data.set(head, at + FRAME_HEAD);
      data.set(state, at + FRAME_HEAD + head.byteLength);
      // seq-cst store after the payload: a consumer that loads n > 0 sees every byte above.
      Atomics.store(commit, at / granule, size / granule);
      // add then notify: the consumer loads data seq before checking commit[], so it cannot miss this.
      Atomics.add(seqs, DATA_SEQ, 1);
      Atomics.notify(seqs, DATA_SEQ, 1);
      return true;
    }
  }

  /**
   * Resolve when the consumer frees space after the last `tryWrite` started (at once if it already
   * did), or after `timeoutMs`. Returns false on timeout. Does not block the event loop.
   */
  async waitForSpace(timeoutMs = Infinity): Promise<boolean> {
    return (await waitOn(this.v.seqs, FREE_SEQ, this.freeSeqSeen, timeoutMs)) !== 'timed-out';
  }

  /** Bytes reserved and not yet freed (a snapshot; for metrics). */
  usedBytes(): number {
    return Number(Atomics.load(this.v.cursors, RESERVE) - Atomics.load(this.v.cursors, READ));
  }
}

export interface KvFrame<H = unknown> {
  readonly header: H;
  /** View into the ring: valid until `release()`. */
  readonly state: Uint8Array;
}

export class KvRingConsumer {
  private readonly v: RingViews;
  /** Our copy of the read cursor; only this consumer writes it. */
  private read_: bigint;
  /** The frame handed out by read() and not yet released: its granule count. */
  private held = 0;
  private closed = false;

  /** There must be exactly one consumer per ring. */
  constructor(sab: SharedArrayBuffer) {
    this.v = new RingViews(sab);
    this.read_ = Atomics.load(this.v.cursors, READ);
  }

  get capacity(): number {
    return this.v.capacity;
  }

  /**
   * The next committed frame in reservation order, or null if it is not committed yet (a frame
   * reserved after it may already be; order is kept, so the consumer waits for this one).
   * Throws while a previous frame is still held: call `release()` first.
   */
  read<H = unknown>(): KvFrame<H> | null {
    if (this.held !== 0) throw new Error('KvRingConsumer.read(): release() the previous frame first');
    const { capBig, granule, commit, data, dataView } = this.v;
    for (;;) {
      const pos = Number(this.read_ % capBig);
      // seq-cst load: pairs with the producer's commit store, making its payload writes visible.
      const c = Atomics.load(commit, pos / granule);
      if (c === 0) return null;
      if (c < 0) {
        this.free(pos, -c);
        continue;
      }
      const headLen = dataView.getUint32(pos, true);
      const stateLen = dataView.getUint32(pos + 4, true);
      if (FRAME_HEAD + headLen + stateLen > c * granule) throw new Error(`KV ring corrupt: frame at ${pos} overruns its ${c} granules`);
      // slice(): msgpackr decodes strings with TextDecoder, which refuses shared memory.
      const header = unpack<H>(data.slice(pos + FRAME_HEAD, pos + FRAME_HEAD + headLen));
      const start = pos + FRAME_HEAD + headLen;
      this.held = c;
      return { header, state: data.subarray(start, start + stateLen) };
    }
  }

  /** Free the frame returned by the last `read()`; its `state` view must not be used after this. */
  release(): void {
    if (this.held === 0) throw new Error('KvRingConsumer.release(): no frame held');
    const n = this.held;
    this.held = 0;
    this.free(Number(this.read_ % this.v.capBig), n);
  }

  /**
   * Resolve true when a frame (or skip) is committed at the read cursor, false after `timeoutMs` or
   * once `close()` is called. Waits with Atomics.waitAsync, so the event loop keeps running (and a
   * ref'd timer keeps the thread alive meanwhile).
   */
  async waitForData(timeoutMs = Infinity): Promise<boolean> {
    const { capBig, granule, commit, seqs } = this.v;
    const deadline = timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      if (this.closed) return false;
      // Load the seq first: a commit after this bumps it, so the wait below returns at once.
      const seen = Atomics.load(seqs, DATA_SEQ);
      const next = this.read_ + BigInt(this.held * granule);
      if (Atomics.load(commit, Number(next % capBig) / granule) !== 0) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await waitOn(seqs, DATA_SEQ, seen, left);
    }
  }

  /** Wake a pending waitForData() with false; further waits return false at once. */
  close(): void {
    this.closed = true;
    Atomics.add(this.v.seqs, DATA_SEQ, 1);
    Atomics.notify(this.v.seqs, DATA_SEQ);
  }

  private free(pos: number, granules: number): void {
    const { granule, cursors, seqs, commit } = this.v;
    // Zero the commit word before advancing: producers see free space only after the store below,
    // and a new frame starting here must find 0 (seq-cst store ordered before the cursor store).
    Atomics.store(commit, pos / granule, 0);
    this.read_ += BigInt(granules * granule);
    // seq-cst store: publishes the freed space to producers' loads of the read cursor.
    Atomics.store(cursors, READ, this.read_);
    // add then notify: pairs with freeSeqSeen in tryWrite/waitForSpace so producers do not miss it.
    Atomics.add(seqs, FREE_SEQ, 1);
    Atomics.notify(seqs, FREE_SEQ);
  }
}
