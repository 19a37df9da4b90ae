/**
 * msgpack encoding of the frames that cross threads (hot request frames, KV ring tickets): one
 * Packr configuration for every producer and consumer, so both ends always agree.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false });

/**
 * Pack a frame into its own right-sized buffer. msgpackr returns a view into a reused working
 * buffer: transferring that would detach msgpackr's buffer, and cloning it would copy all of it.
 */
export function pack(frame: unknown): Uint8Array {
  return new Uint8Array(packr.pack(frame));
}

export function unpack<F>(data: Uint8Array): F {
  return packr.unpack(data) as F;
}
