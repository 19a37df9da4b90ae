/**
 * A fixed-capacity ring: pushing into a full ring overwrites the oldest entry, so memory stays
 * bounded however long the server runs. Used for the console's recent-activity lists and /debug's
 * token traces.
 */
export class RingBuffer<T> {
  private readonly items: (T | undefined)[];
  /** Index the next push writes to. */
  private next = 0;
  private count = 0;
  /** Entries ever pushed (overwritten ones included). */
  private pushed = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    this.pushed++;
  }

  get size(): number {
    return this.count;
  }

  /** Entries ever pushed, including those overwritten since. */
  get total(): number {
    return this.pushed;
  }

  /** The entries, newest first. */
  newestFirst(): T[] {
    const out: T[] = [];
    for (let i = 1; i <= this.count; i++) out.push(this.items[(this.next - i + this.capacity) % this.capacity] as T);
    return out;
  }
}
