/**
 * The audit log's checkpoint: the `seq` and SHA-256 of the last durable line, kept in a separate
 * file (`<log>.checkpoint`) and rewritten after every fsync'd batch. The hash chain alone cannot
 * show that lines were cut off the end (the shorter log is still a valid chain); the checkpoint
 * can: a log that ends before the checkpoint's `seq`, or whose line at that `seq` hashes
 * differently, fails `audit verify`.
 *
 * Trust model. With `INFERFLUX_POLICY_PASSPHRASE` set, the checkpoint carries an HMAC-SHA256
 * under a key derived from it (scrypt, fixed salt), so whoever can edit the log but does not know
 * the passphrase cannot write a matching checkpoint; `audit verify` needs the same passphrase to
 * check it, and refuses an unsigned checkpoint when it has one. Without a passphrase the
 * checkpoint is plain and only guards against accidents and careless edits. Either way, someone
 * who can write the directory can delete the checkpoint or put back an older genuine one: ship
 * checkpoints (or the log) off the host when that matters. A checkpoint may lag the log by one
 * batch after a crash (it is written after the log's fsync), so it is a lower bound: the log may
 * run past it, never end before it.
 *
 * File format, one JSON object: `{"v":1,"seq":N,"hash":"<hex>","ts":"<iso>","mac":"<hex>"|null}`;
 * the MAC covers `v|seq|hash|ts`.
 */
import { createHmac, scryptSync, timingSafeEqual } from 'node:crypto';
import { open, rename } from 'node:fs/promises';

export interface Checkpoint {
  /** `seq` of the last durable line. */
  seq: number;
  /** SHA-256 (hex) of that line's bytes. */
  hash: string;
  ts: string;
}

export interface ReadCheckpoint extends Checkpoint {
  /** It carries a MAC. */
  signed: boolean;
  /** Its MAC was checked against a key (false when no key was given). */
  authenticated: boolean;
}

const SALT = 'inferflux-audit-checkpoint-v1';

export function checkpointPathFor(logPath: string): string {
  return `${logPath}.checkpoint`;
}

/** The HMAC key for a passphrase (~50-100 ms: scrypt, once per process). */
export function checkpointKey(passphrase: string | undefined): Buffer | null {
  if (passphrase === undefined || passphrase === '') return null;
  return scryptSync(passphrase, SALT, 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
}

function mac(c: Checkpoint, key: Uint8Array): string {
  return createHmac('sha256', key).update(`1|${c.seq}|${c.hash}|${c.ts}`).digest('hex');
}

export function encodeCheckpoint(c: Checkpoint, key: Uint8Array | null): string {
  return JSON.stringify({ v: 1, seq: c.seq, hash: c.hash, ts: c.ts, mac: key ? mac(c, key) : null });
}

export class CheckpointError extends Error {}

/** Parses and (with a key) authenticates a checkpoint; throws CheckpointError saying why not. */
export function decodeCheckpoint(text: string, key: Uint8Array | null): ReadCheckpoint {
  let v: { v?: unknown; seq?: unknown; hash?: unknown; ts?: unknown; mac?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    throw new CheckpointError('the checkpoint is not JSON');
  }
  if (
    v === null ||
    v.v !== 1 ||
    typeof v.seq !== 'number' ||
    !Number.isInteger(v.seq) ||
    v.seq < 0 ||
    typeof v.hash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(v.hash) ||
    typeof v.ts !== 'string' ||
    (v.mac !== null && (typeof v.mac !== 'string' || !/^[0-9a-f]{64}$/.test(v.mac)))
  ) {
    throw new CheckpointError('the checkpoint has no valid v/seq/hash/ts/mac fields');
  }
  const c: Checkpoint = { seq: v.seq, hash: v.hash, ts: v.ts };
  if (key) {
    if (v.mac === null) throw new CheckpointError('the checkpoint is unsigned but a passphrase is set (it could have been written by anyone)');
    if (!timingSafeEqual(Buffer.from(mac(c, key), 'hex'), Buffer.from(v.mac as string, 'hex'))) {
      throw new CheckpointError('the checkpoint signature does not match (altered, or another passphrase)');
    }
  }
  return { ...c, signed: v.mac !== null, authenticated: key !== null };
}

/** Writes the checkpoint atomically (temp file, fsync, rename): a reader sees the old or the new one. */
export async function writeCheckpoint(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text + '\n');
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** Reads `path` as text, or null when there is no checkpoint. */
export async function readCheckpointText(path: string): Promise<string | null> {
  try {
    const fh = await open(path, 'r');
    try {
      return (await fh.readFile('utf8')).trim();
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
