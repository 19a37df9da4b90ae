/**
 * The policy store's writer lock against real processes: a writer killed with SIGKILL while it holds
 * the lock does not block the next writer; a live holder, and a pid reused by another process, are
 * told apart from a dead one.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferFluxError } from '../../src/errors.js';
import { acquireFileLock, currentOwner, ownerState } from '../../src/policy/store/file-lock.js';
import { emptyDefaults } from '../../src/policy/store/initial-policy.js';
import { openPolicyStore } from '../../src/policy/store/policy-store.js';

const LOCK_MODULE = new URL('../../src/policy/store/file-lock.ts', import.meta.url).href;
const busy = () => new Error('busy');

/** A child process that takes the lock and then waits to be killed. */
async function holder(lockPath: string): Promise<ChildProcess> {
  const script = `
    import { acquireFileLock } from ${JSON.stringify(LOCK_MODULE)};
    await acquireFileLock(${JSON.stringify(lockPath)}, { waitMs: 5000, staleMs: 600000 }, () => new Error('busy'));
    process.stdout.write('locked\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  expect(chunk.toString()).to.equal('locked\n');
  return child;
}

describe('policy store writer lock', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ifx-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a live holder keeps the lock; once it is killed with SIGKILL the next writer takes it at once', async () => {
    const lockPath = join(dir, 'store.lock');
    const child = await holder(lockPath);
    try {
      expect(JSON.parse(await readFile(lockPath, 'utf8'))).to.include({ pid: child.pid });
      // Alive: not taken over, even though the lock is far older than staleMs.
      const old = new Date(Date.now() - 3_600_000);
      await utimes(lockPath, old, old);
      let error: unknown;
      await acquireFileLock(lockPath, { waitMs: 200, staleMs: 1000 }, busy).catch((e: unknown) => (error = e));
      expect(error).to.deep.equal(busy());
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    expect(existsSync(lockPath), 'SIGKILL leaves the lock file behind').to.equal(true);
    const t0 = Date.now();
    const release = await acquireFileLock(lockPath, { waitMs: 200, staleMs: 600_000 }, busy);
    expect(Date.now() - t0).to.be.below(200);
    expect(JSON.parse(await readFile(lockPath, 'utf8'))).to.deep.equal(currentOwner());
    await release();
    expect(existsSync(lockPath)).to.equal(false);
  });

  it('the policy store saves right after a writer holding its lock was killed', async () => {
    const file = join(dir, 'policy_store.conf');
    const child = await holder(`${file}.lock`);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const store = openPolicyStore({ path: file });
    await store.save({ ...emptyDefaults(), version: 1, updatedAt: new Date(0).toISOString() });
    expect((await store.load())!.version).to.equal(1);
    expect(existsSync(`${file}.lock`)).to.equal(false);
  });

  it('the lock appears whole or not at all: a reader never sees it empty or torn', async () => {
    // A lock created empty and filled afterwards, SIGKILLed in between, names no owner and blocks
    // every writer until it is stale (it failed CI once). Poll the name while a child takes and
    // releases it in a tight loop: every read that finds the file must parse as an owner.
    const lockPath = join(dir, 'store.lock');
    const script = `
      import { acquireFileLock } from ${JSON.stringify(LOCK_MODULE)};
      for (let i = 0; i < 400; i++) await (await acquireFileLock(${JSON.stringify(lockPath)}, { waitMs: 5000, staleMs: 600000 }, () => new Error('busy')))();
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = once(child, 'exit');
    let running = true;
    void exited.then(() => (running = false));
    let seen = 0;
    const deadline = Date.now() + 20_000;
    while (running && Date.now() < deadline) {
      const text = await readFile(lockPath, 'utf8').catch(() => null);
      if (text === null) continue;
      seen++;
      expect(() => JSON.parse(text), `lock read as ${JSON.stringify(text)}`).to.not.throw();
    }
    const [code] = (await exited) as [number];
    expect(code).to.equal(0);
    expect(seen, 'the poller saw the lock held at least once').to.be.greaterThan(0);
  });

  it('tells a reused pid from its owner, and leaves owners it cannot check to the age rule', async () => {
    const me = currentOwner();
    expect(ownerState(me)).to.equal('alive');
    expect(ownerState({ ...me, start: String(Number(me.start) + 1) })).to.equal('dead'); // our pid, another process's start time
    expect(ownerState({ ...me, pid: 2 ** 22 + 17 })).to.equal('dead'); // above pid_max: no such process
    expect(ownerState({ ...me, host: 'other-replica' })).to.equal('unknown');
    expect(ownerState({ ...me, ns: 'pid:[1]' })).to.equal('unknown');
    // A lock from another host (or an older build's bare pid) is taken over only when stale.
    const lockPath = join(dir, 'store.lock');
    await writeFile(lockPath, JSON.stringify({ ...me, host: 'other-replica' }));
    let error: unknown;
    await acquireFileLock(lockPath, { waitMs: 100, staleMs: 60_000 }, () => new InferFluxError('policy_conflict')).catch((e: unknown) => (error = e));
    expect((error as InferFluxError).code).to.equal('policy_conflict');
    const old = new Date(Date.now() - 120_000);
    await utimes(lockPath, old, old);
    await (await acquireFileLock(lockPath, { waitMs: 100, staleMs: 60_000 }, busy))();
  });
});
