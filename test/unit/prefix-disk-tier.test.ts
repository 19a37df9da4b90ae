import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskTier, DiskTierError, INDEX_FILE, type DiskRemoveReason, type DiskTierOptions } from '../../src/runtime/prefix/disk-tier.js';
import { snapshotId, type SnapshotId } from '../../src/runtime/prefix/snapshot-key.js';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
const toks = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('prefix DiskTier', () => {
  let dir: string;
  const open: DiskTier[] = [];
  const removed: Array<[SnapshotId, DiskRemoveReason]> = [];

  async function makeTier(o: Partial<DiskTierOptions> = {}): Promise<DiskTier> {
    const t = await DiskTier.open({ path: dir, now: () => 1_700_000_000_000, onRemove: (id, r) => removed.push([id, r]), ...o });
    open.push(t);
    return t;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ifx-disk-'));
    removed.length = 0;
  });
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes files atomically under hashed names and serves queued bytes before they land', async () => {
    const tier = await makeTier();
    const data = bytes(1000, 1);
    expect(tier.spill('ns', toks(40), data)).to.equal('queued');
    expect(tier.spill('ns', toks(40), data)).to.equal('exists');
    const id = snapshotId('ns', toks(40));
    expect(tier.has(id)).to.equal(true);
    expect([...(await tier.load(id))]).to.deep.equal([...data]); // from the queue or the file
    await tier.drain();
    const names = (await readdir(dir)).sort();
    expect(names.filter((n) => n.endsWith('.tmp'))).to.deep.equal([]);
    expect(names).to.have.length(2);
    expect(names).to.include(INDEX_FILE);
    const file = names.find((n) => n.endsWith('.kv'))!;
    expect(file.startsWith(id)).to.equal(true);
    expect([...(await readFile(join(dir, file)))]).to.deep.equal([...data]);
    expect(tier.get(id)).to.deep.include({ ns: 'ns', size: 1000, file });
    expect(tier.stats()).to.include({ files: 1, bytes: 1000, written: 1, queued: 0, inFlight: 0 });
  });

  it('recovers the index in a new instance after a restart, and cleans stray files', async () => {
    const t1 = await makeTier();
    t1.spill('m1', toks(50), bytes(300, 1));
    t1.spill('m2', toks(60, 5), bytes(400, 2));
    t1.spill('m1', toks(70), bytes(500, 3));
    await t1.drain();
    t1.delete(snapshotId('m1', toks(70)));
    await t1.close();
    await writeFile(join(dir, 'leftover.kv.tmp'), 'x');
    await writeFile(join(dir, 'orphan.kv'), 'y');
    await writeFile(join(dir, INDEX_FILE), (await readFile(join(dir, INDEX_FILE), 'utf8')) + '{"v":1,"op":"put","id":"tor');

    const t2 = await makeTier();
    // Writers run concurrently, so the index lists entries in the order their files landed.
    const entries = [...t2.entries()].map((e) => ({ ns: e.ns, tokens: [...e.tokens], size: e.size })).sort((a, b) => a.ns.localeCompare(b.ns));
    expect(entries).to.deep.equal([
      { ns: 'm1', tokens: toks(50), size: 300 },
      { ns: 'm2', tokens: toks(60, 5), size: 400 },
    ]);
    expect(t2.stats()).to.include({ recovered: 2, files: 2, bytes: 700 });
    expect([...(await t2.load(snapshotId('m2', toks(60, 5))))]).to.deep.equal([...bytes(400, 2)]);
    const names = await readdir(dir);
    expect(names.filter((n) => n.includes('leftover') || n.includes('orphan'))).to.deep.equal([]);
    // The index was rewritten compacted: one line per live entry.
    expect((await readFile(join(dir, INDEX_FILE), 'utf8')).trim().split('\n')).to.have.length(2);
  });

  it('drops a corrupted or missing file from the index instead of returning it', async () => {
    const tier = await makeTier();
    tier.spill('ns', toks(40), bytes(256, 1));
    tier.spill('ns', toks(41), bytes(256, 2));
    await tier.drain();
    const a = snapshotId('ns', toks(40));
    const b = snapshotId('ns', toks(41));
    const fa = join(dir, tier.get(a)!.file);
    const buf = await readFile(fa);
    buf[10] ^= 0xff;
    await writeFile(fa, buf);
    await rm(join(dir, tier.get(b)!.file));

    const err = await tier.load(a).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(DiskTierError);
    expect((err as DiskTierError).code).to.equal('corrupt');
    const err2 = await tier.load(b).then(() => null, (e: unknown) => e);
    expect((err2 as DiskTierError).code).to.equal('missing');
    expect(tier.has(a)).to.equal(false);
    expect(tier.has(b)).to.equal(false);
    expect(removed).to.deep.equal([[a, 'corrupt'], [b, 'missing']]);
    expect(tier.stats()).to.include({ corrupt: 1, missing: 1, files: 0, bytes: 0 });
    await tier.drain();
    expect((await readdir(dir)).filter((n) => n.endsWith('.kv'))).to.deep.equal([]);
    const nf = await tier.load(a).then(() => null, (e: unknown) => e);
    expect((nf as DiskTierError).code).to.equal('not_found');
  });

  it('drops spills beyond workers + queue_depth and counts them, without blocking', async () => {
    const tier = await makeTier({ workers: 1, queueDepth: 2 });
    const results = [0, 1, 2, 3, 4].map((i) => tier.spill('ns', toks(40, i * 100), bytes(64, i)));
    expect(results).to.deep.equal(['queued', 'queued', 'queued', 'dropped', 'dropped']);
    expect(tier.stats()).to.include({ inFlight: 1, queued: 2, dropped: 2 });
    await tier.drain();
    expect(tier.stats()).to.include({ inFlight: 0, queued: 0, written: 3, files: 3 });
    expect(tier.spill('ns', toks(40, 900), bytes(64, 9))).to.equal('queued'); // room again
  });

  it('keeps files within the byte budget by deleting the least recently used', async () => {
    const tier = await makeTier({ budgetBytes: 250, workers: 1 });
    const ids = [0, 1, 2].map((i) => snapshotId('ns', toks(40, i * 100)));
    tier.spill('ns', toks(40, 0), bytes(100, 0));
    tier.spill('ns', toks(40, 100), bytes(100, 1));
    await tier.drain();
    await tier.load(ids[0]!); // now the most recently used
    tier.spill('ns', toks(40, 200), bytes(100, 2));
    await tier.drain();
    expect(tier.has(ids[1]!)).to.equal(false);
    expect(tier.has(ids[0]!) && tier.has(ids[2]!)).to.equal(true);
    expect(removed).to.deep.equal([[ids[1], 'budget']]);
    expect(tier.stats()).to.include({ bytes: 200, evictions: 1 });
    expect(tier.spill('ns', toks(40, 300), bytes(251, 3))).to.equal('too_large');
  });
});
