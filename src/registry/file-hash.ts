/**
 * SHA-256 of a model file, streamed: a multi-GB GGUF is read in 1 MiB chunks on the libuv pool and
 * hashed a chunk at a time, so the event loop only ever spends one chunk's hashing time (~2 ms)
 * before serving requests again, and memory stays flat.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
