/**
 * Cross-process writer lock for the policy store file: `<store>.lock`, created with O_EXCL, holding
 * who owns it. A writer killed with SIGKILL cannot remove its lock, so a waiting writer checks the
 * owner: on the same machine and pid namespace, an owner whose pid is gone, or whose pid now belongs
 * to a process started at another time (pid reuse), is dead, and its lock is taken over at once;
 * a live one keeps it however long it takes. An owner elsewhere (another replica on a shared
 * volume) cannot be checked; its lock is taken over once it is older than `staleMs`.
 *
 * The lock appears whole or not at all: the owner is written to a file of its own first, then
 * hard-linked to `<store>.lock` (link fails when the name exists, as O_EXCL does). A lock created
 * empty and filled afterwards would, after a SIGKILL in between, be an owner nobody can check and
 * block every writer until it is stale.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { link, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

export interface LockOwner {
  pid: number;
  host: string;
  /** The pid namespace (`/proc/self/ns/pid`): pids are comparable only inside one. */
  ns: string;
  /** The process's start time in clock ticks after boot (`/proc/<pid>/stat` field 22), or ''. */
  start: string;
}

export interface FileLockOptions {
  /** Give up after this long. */
  waitMs: number;
  /** A lock whose owner cannot be checked is taken over when older than this. */
  staleMs: number;
}

function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return '';
  }
}

/** Start time of a process, '' when unknown (no /proc, or no such process). */
export function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

export function currentOwner(): LockOwner {
  return { pid: process.pid, host: hostname(), ns: pidNamespace(), start: processStart(process.pid) };
}

/**
 * `dead` when provably gone (same host and pid namespace, and its pid is free or now belongs to a
 * process started at another time), `alive` when provably running, else `unknown` (another host).
 */
export function ownerState(owner: LockOwner, me: LockOwner = currentOwner()): 'dead' | 'alive' | 'unknown' {
  if (owner.host !== me.host || owner.ns !== me.ns || !Number.isInteger(owner.pid) || owner.pid <= 0) return 'unknown';
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: a process we may not signal holds the pid, so it exists.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'dead';
  }
  if (owner.start === '') return 'unknown';
  return processStart(owner.pid) === owner.start ? 'alive' : 'dead';
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.ns === 'string' && typeof o.start === 'string') return o as LockOwner;
  } catch {
    // A lock from an older build (just a pid) or one torn by a crash: judged by its age.
  }
  return null;
}

/**
 * Takes the lock, waiting up to `waitMs`; resolves with the release function, or rejects with
 * `onBusy()`'s error when another live writer keeps it.
 */
export async function acquireFileLock(lockPath: string, opts: FileLockOptions, onBusy: () => Error): Promise<() => Promise<void>> {
  const me = currentOwner();
  const until = Date.now() + opts.waitMs;
  const mine = `${lockPath}.${process.pid}.${Date.now().toString(36)}.tmp`;
  await writeFile(mine, JSON.stringify(me) + '\n', { mode: 0o600 });
  try {
    return await takeOver(lockPath, mine, me, until, opts, onBusy);
  } finally {
    await rm(mine, { force: true });
  }
}

async function takeOver(lockPath: string, mine: string, me: LockOwner, until: number, opts: FileLockOptions, onBusy: () => Error): Promise<() => Promise<void>> {
  for (;;) {
    try {
      await link(mine, lockPath);
      return () => rm(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const [text, st] = await Promise.all([readFile(lockPath, 'utf8').catch(() => null), stat(lockPath).catch(() => null)]);
    if (text === null || st === null) continue; // released meanwhile: try again at once
    const owner = parseOwner(text);
    const state = owner ? ownerState(owner, me) : 'unknown';
    // A live writer keeps its lock however slow it is; one we cannot check, until it is stale.
    if (state === 'dead' || (state === 'unknown' && Date.now() - st.mtimeMs > opts.staleMs)) {
      // Move it aside and check it is the file judged dead: another writer may have taken the dead
      // lock over and created its own in the meantime, which must be put back, not deleted.
      const aside = `${lockPath}.${process.pid}.dead`;
      if (await rename(lockPath, aside).then(() => true, () => false)) {
        const moved = await stat(aside).catch(() => null);
        if (moved && moved.ino !== st.ino) await rename(aside, lockPath).catch(() => undefined);
        else await rm(aside, { force: true });
      }
      continue;
    }
    if (Date.now() > until) throw onBusy();
    await new Promise((r) => setTimeout(r, 20));
  }
}
