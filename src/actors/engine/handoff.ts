/**
 * One engine worker's end of the disaggregated KV hand-off (DESIGN §3 "KV channel").
 *
 * Prefill role: a request handed off after its first token leaves its sequence state in a tmpfs
 * file, held here under a ticket until the scheduler has placed the request on a decode worker
 * and says which one (`ship`). The state then goes into that worker's SharedArrayBuffer ring:
 * inline (msgpackr header + raw bytes) up to a quarter of the ring, and above that as its path
 * (both workers are threads of this process, so the path is as good as the bytes and saves
 * several copies of tens of MB). A full ring turns the ticket away ("blocked"); it is retried.
 *
 * Decode role: frames are taken out of this worker's ring as they arrive (Atomics wake-up) and
 * kept by ticket until the request's admission picks them up (`take`).
 */
import { componentLog } from '../../log/logger.js';
import { readFile, stat, unlink } from 'node:fs/promises';
import { KvRingConsumer, KvRingProducer } from '../../runtime/kv/kv-ring.js';
import type { EngineRole } from '../protocol.js';

/** How long a prefill worker retries a blocked ticket before giving up on shipping it. */
const SHIP_TIMEOUT_MS = 10_000;

interface HandoffHeader {
  ticket: string;
  /** Set when the state travels by path instead of inline. */
  file?: string;
}

export class KvHandoff {
  /** Prefill role: saved states of handed-off requests, by ticket, until shipped. */
  private readonly held = new Map<string, string>();
  private producers: KvRingProducer[] = [];
  /** Decode role: states that arrived (bytes, or a tmpfs path), by ticket. */
  private readonly arrived = new Map<string, Uint8Array | string>();
  private consumer: KvRingConsumer | null = null;
  private closed = false;
  private blocked = 0;
  private shipped = 0;

  constructor(
    private readonly role: EngineRole,
    /** Called when a frame arrives (the engine loop may be waiting for it). */
    private readonly onArrive: () => void,
  ) {}

  /** The decode workers' rings (prefill role), or this worker's own (decode role). */
  setRings(rings: SharedArrayBuffer[]): void {
    if (this.role === 'prefill') this.producers = rings.map((r) => new KvRingProducer(r));
    if (this.role === 'decode' && rings[0] && !this.consumer) {
      this.consumer = new KvRingConsumer(rings[0]);
      void this.receive(this.consumer);
    }
  }

  /** Prefill role: keep a handed-off request's state file until the scheduler says where it goes. */
  hold(ticket: string, file: string): void {
    this.held.set(ticket, file);
  }

  /** Prefill role: write a held state into decode worker `to`'s ring (see the header). */
  async ship(ticket: string, to: number): Promise<void> {
    const file = this.held.get(ticket);
    const producer = this.producers[to];
    if (!file || !producer) return;
    this.held.delete(ticket);
    let byPath = false;
    try {
      byPath = (await stat(file)).size > producer.capacity / 4;
      const bytes = byPath ? new Uint8Array(0) : await readFile(file);
      const header: HandoffHeader = byPath ? { ticket, file } : { ticket };
      const deadline = Date.now() + SHIP_TIMEOUT_MS;
      let counted = false;
      while (!producer.tryWrite(header, bytes)) {
        // Counted once per ticket, however many retries it takes.
        if (!counted) this.blocked++;
        counted = true;
        if (Date.now() > deadline) throw new Error(`KV ring of decode worker ${to} stayed full for ${SHIP_TIMEOUT_MS} ms`);
        await producer.waitForSpace(100);
      }
      this.shipped++;
    } catch (err) {
      byPath = false;
      // The decode worker then prefills the prompt itself after its wait: slower, still correct.
      componentLog('engine').warn(`hand-off ${ticket} not shipped (${String(err)})`);
    } finally {
      // A path hand-off's file now belongs to the decode worker, which deletes it after loading.
      if (!byPath) void unlink(file).catch(() => undefined);
    }
  }

  /** Decode role: whether a ticket's state has arrived. */
  has(ticket: string): boolean {
    return this.arrived.has(ticket);
  }

  /** Decode role: the arrived state (bytes, or the path of a file to load and delete), once. */
  take(ticket: string): Uint8Array | string | undefined {
    const got = this.arrived.get(ticket);
    this.arrived.delete(ticket);
    return got;
  }

  counters(): { blockedTickets: number; shippedTickets: number } {
    return { blockedTickets: this.blocked, shippedTickets: this.shipped };
  }

  close(): void {
    this.closed = true;
    this.consumer?.close();
  }

  private async receive(consumer: KvRingConsumer): Promise<void> {
    while (!this.closed) {
      if (!(await consumer.waitForData(500))) continue;
      for (let f = consumer.read<HandoffHeader>(); f; f = consumer.read<HandoffHeader>()) {
        // The view is only valid until release(): copy the state out (or take the path).
        this.arrived.set(f.header.ticket, f.header.file ?? new Uint8Array(f.state));
        consumer.release();
      }
      this.onArrive();
    }
  }
}
