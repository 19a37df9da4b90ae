/**
 * The audit log's hash chain, through the real writer worker (from dist/) and the verify command:
 * altered and deleted lines are named by file and line, rotation boundaries and restarts keep
 * the chain, a torn tail from a crash is cut and noted.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENESIS_HASH, sha256Hex, verifyChain } from '../../src/audit/chain.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { checkpointKey, encodeCheckpoint } from '../../src/audit/checkpoint.js';
import { verifyAuditPaths } from '../../src/cli/audit-verify.js';

type ClientModule = typeof import('../../src/actors/audit/client.js');
const DIST_CLIENT = fileURLToPath(new URL('../../dist/actors/audit/client.js', import.meta.url));
const DIST_CLI = fileURLToPath(new URL('../../dist/cli/audit-verify.js', import.meta.url));

function event(i: number): AuditEvent {
  return { ts: new Date(0).toISOString(), event: 'completion', requestId: `req-${i}`, model: 'tiny', promptTokens: i };
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').slice(0, -1);
}

describe('audit hash chain', function () {
  this.timeout(30_000);
  let client: ClientModule;
  let dir: string;
  let path: string;

  before(async function () {
    for (const f of [DIST_CLIENT, DIST_CLI]) if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first`);
    client = (await import(DIST_CLIENT)) as ClientModule;
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ifx-chain-'));
    path = join(dir, 'audit.log');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function write(n: number, from = 0, opts: { maxBytes?: number; keep?: number } = {}): Promise<void> {
    const w = await client.startAuditWriter({ path, ...opts });
    for (let i = from; i < from + n; i++) w.record(event(i));
    await w.close();
  }

  it('starts at genesis; each prev is the SHA-256 of the previous line', async () => {
    await write(20);
    const ls = await lines(path);
    const parsed = ls.map((l) => JSON.parse(l) as { seq: number; prev: string });
    expect(parsed[0]).to.include({ seq: 0, prev: GENESIS_HASH });
    for (let i = 1; i < ls.length; i++) expect(parsed[i]).to.include({ seq: i, prev: sha256Hex(ls[i - 1]!) });
    const [r] = await verifyAuditPaths([path]);
    expect(r).to.deep.include({ ok: true, lines: 20, start: 'genesis', problem: null });
  });

  it('names an altered line by file and line number', async () => {
    await write(10);
    const ls = await lines(path);
    ls[4] = ls[4]!.replace('"promptTokens":4', '"promptTokens":5');
    await writeFile(path, ls.join('\n') + '\n');
    const [r] = await verifyAuditPaths([path]);
    expect(r!.ok).to.equal(false);
    expect(r!.problem).to.include({ file: path, line: 5, kind: 'altered' });
  });

  it('names a deleted line (the gap) by file and line number', async () => {
    await write(10);
    const ls = await lines(path);
    ls.splice(6, 1);
    await writeFile(path, ls.join('\n') + '\n');
    const [r] = await verifyAuditPaths([path]);
    expect(r!.problem).to.include({ file: path, line: 7, kind: 'missing' });
    expect(r!.problem!.message).to.contain('1 line(s) missing');
  });

  it('the chain crosses rotation boundaries, and a tampered rotated file is named', async () => {
    await write(300, 0, { maxBytes: 4096, keep: 100 });
    const files = (await readdir(dir)).filter((f) => f.startsWith('audit.log'));
    expect(files.length).to.be.greaterThan(3);
    // The first line of the live file points at the last line of audit.log.1.
    const first = JSON.parse((await lines(path))[0]!) as { prev: string };
    expect(first.prev).to.equal(sha256Hex((await lines(`${path}.1`)).at(-1)!));
    const [ok] = await verifyAuditPaths([dir]);
    expect(ok).to.deep.include({ ok: true, lines: 300, start: 'genesis' });
    // Given in any order, the files are put back in chain order.
    const shuffled = files.map((f) => join(dir, f)).sort(() => 0.5 - Math.random());
    expect((await verifyAuditPaths(shuffled))[0]!.ok).to.equal(true);
    // Deleting the last line of a rotated file is caught at the next file's first line.
    const l2 = await lines(`${path}.2`);
    await writeFile(`${path}.2`, l2.slice(0, -1).join('\n') + '\n');
    const [bad] = await verifyAuditPaths([dir]);
    expect(bad!.problem).to.include({ file: `${path}.1`, line: 1, kind: 'missing' });
  });

  it('verifies what is left after old files were rotated away (anchored)', async () => {
    await write(200, 0, { maxBytes: 2048, keep: 2 });
    const [r] = await verifyAuditPaths([dir]);
    expect(r).to.deep.include({ ok: true, start: 'anchored' });
  });

  it('a restart continues the chain from the last line on disk', async () => {
    await write(5);
    await write(5, 5);
    const ls = await lines(path);
    expect(ls).to.have.length(10);
    expect(JSON.parse(ls[5]!)).to.include({ seq: 5, prev: sha256Hex(ls[4]!) });
    expect((await verifyAuditPaths([path]))[0]!.ok).to.equal(true);
  });

  it('a restart right after a rotation continues from audit.log.1', async () => {
    await write(50, 0, { maxBytes: 2048, keep: 10 });
    // As if the process died between the rotation and its first write: no audit.log, and the
    // checkpoint still at the last line of audit.log.1 (removing audit.log's lines alone is a
    // truncation, which the checkpoint reports).
    await rm(path);
    const last = (await lines(`${path}.1`)).at(-1)!;
    await writeFile(`${path}.checkpoint`, encodeCheckpoint({ seq: (JSON.parse(last) as { seq: number }).seq, hash: sha256Hex(last), ts: new Date(0).toISOString() }, null));
    await write(3, 50, { maxBytes: 2048, keep: 10 });
    expect((await verifyAuditPaths([dir]))[0]).to.deep.include({ ok: true, start: 'genesis' });
  });

  it('cuts a torn last line left by a crash and notes it in the chain', async () => {
    await write(5);
    await appendFile(path, '{"ts":"2024-01-01T00:00:00.000Z","event":"comp');
    await write(2, 5);
    const ls = await lines(path);
    expect(ls).to.have.length(8);
    expect(JSON.parse(ls[5]!)).to.include({ event: 'lifecycle', decision: 'audit.torn_tail_removed' });
    expect((await verifyAuditPaths([path]))[0]!.ok).to.equal(true);
  });

  it('verifyChain reports a line that is not JSON as malformed', () => {
    const r = verifyChain([{ file: 'x.log', lines: ['{"seq":0,"prev":"' + GENESIS_HASH + '"}', 'garbage'] }]);
    expect(r.problem).to.include({ file: 'x.log', line: 2, kind: 'malformed' });
  });

  it('the command exits 0 on a good log and 1 naming the first bad line', async () => {
    await write(10);
    const good = spawnSync(process.execPath, [DIST_CLI, path], { encoding: 'utf8' });
    expect(good.status).to.equal(0);
    expect(good.stdout).to.match(/^OK 10 line\(s\) in audit\.log, chain from genesis/);
    const ls = await lines(path);
    ls[2] = ls[2]!.replace('req-2', 'req-X');
    await writeFile(path, ls.join('\n') + '\n');
    const bad = spawnSync(process.execPath, [DIST_CLI, dir], { encoding: 'utf8' });
    expect(bad.status).to.equal(1);
    expect(bad.stdout).to.contain(`FAIL ${path}:3: altered`);
    expect(spawnSync(process.execPath, [DIST_CLI], { encoding: 'utf8' }).status).to.equal(2);
  });
});

describe('audit checkpoint (lines cut off the end)', function () {
  this.timeout(30_000);
  let client: ClientModule;
  let dir: string;
  let path: string;
  const key = checkpointKey('correct horse battery staple')!;

  before(async () => {
    client = (await import(DIST_CLIENT)) as ClientModule;
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ifx-checkpoint-'));
    path = join(dir, 'audit.log');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function write(n: number, from = 0, opts: { checkpointKey?: Uint8Array | null; maxBytes?: number; keep?: number } = {}): Promise<void> {
    const w = await client.startAuditWriter({ path, ...opts });
    for (let i = from; i < from + n; i++) w.record(event(i));
    await w.close();
  }

  it('is written next to the log with the last line\'s seq and hash', async () => {
    await write(7);
    const cp = JSON.parse(await readFile(`${path}.checkpoint`, 'utf8')) as Record<string, unknown>;
    expect(cp).to.include({ v: 1, seq: 6, hash: sha256Hex((await lines(path)).at(-1)!), mac: null });
    const [r] = await verifyAuditPaths([path]);
    expect(r).to.deep.include({ ok: true, lines: 7 });
    expect(r!.checkpoint).to.include({ seq: 6, signed: false });
  });

  it('removing the last lines fails verification, naming the missing lines', async () => {
    await write(10);
    const ls = await lines(path);
    await writeFile(path, ls.slice(0, 8).join('\n') + '\n');
    const [r] = await verifyAuditPaths([path]);
    expect(r!.ok).to.equal(false);
    expect(r!.problem).to.deep.include({ file: path, line: 9, kind: 'truncated' });
    expect(r!.problem!.message).to.match(/^2 line\(s\) missing at the end of the log \(seq 8\.\.9\): the checkpoint records seq 9 written /);
    const cli = spawnSync(process.execPath, [DIST_CLI, path], { encoding: 'utf8' });
    expect(cli.status).to.equal(1);
    expect(cli.stdout).to.contain(`FAIL ${path}:9: truncated: 2 line(s) missing at the end of the log (seq 8..9)`);
  });

  it('a replaced last line fails against the checkpoint hash', async () => {
    await write(4);
    const ls = await lines(path);
    const last = JSON.parse(ls[3]!) as Record<string, unknown>;
    ls[3] = JSON.stringify({ ...last, requestId: 'forged' });
    await writeFile(path, ls.join('\n') + '\n');
    const [r] = await verifyAuditPaths([path]);
    expect(r!.problem).to.deep.include({ file: path, line: 4, kind: 'altered' });
  });

  it('a restart after truncation continues from the checkpoint, so the gap stays visible', async () => {
    await write(10);
    const ls = await lines(path);
    await writeFile(path, ls.slice(0, 6).join('\n') + '\n');
    await write(3, 10);
    const after = await lines(path);
    expect(JSON.parse(after[6]!)).to.include({ event: 'lifecycle', decision: 'audit.checkpoint_mismatch', seq: 10 });
    const [r] = await verifyAuditPaths([path]);
    expect(r!.problem).to.deep.include({ file: path, line: 7, kind: 'missing' });
    expect(r!.problem!.message).to.contain('4 line(s) missing before this line (seq 6..9)');
  });

  it('rotation keeps one checkpoint for the whole chain', async () => {
    await write(200, 0, { maxBytes: 4096, keep: 100 });
    const [ok] = await verifyAuditPaths([dir]);
    expect(ok).to.deep.include({ ok: true, lines: 200 });
    expect(ok!.checkpoint).to.include({ seq: 199 });
    await writeFile(path, '');
    const [bad] = await verifyAuditPaths([dir]);
    expect(bad!.problem!.kind).to.equal('truncated');
  });

  it('signed with a key from the passphrase: a forged checkpoint or an unsigned one is refused', async () => {
    await write(5, 0, { checkpointKey: key });
    const cpPath = `${path}.checkpoint`;
    const cp = JSON.parse(await readFile(cpPath, 'utf8')) as { mac: string | null; seq: number };
    expect(cp.mac).to.match(/^[0-9a-f]{64}$/);
    expect((await verifyAuditPaths([path], key))[0]).to.deep.include({ ok: true });
    expect((await verifyAuditPaths([path], key))[0]!.checkpoint).to.include({ signed: true, authenticated: true });
    // Cut the tail and rewrite the checkpoint to match, without the key.
    const ls = await lines(path);
    await writeFile(path, ls.slice(0, 3).join('\n') + '\n');
    await writeFile(cpPath, JSON.stringify({ ...cp, seq: 2, hash: sha256Hex(ls[2]!) }));
    const [forged] = await verifyAuditPaths([path], key);
    expect(forged!.problem).to.deep.include({ file: cpPath, kind: 'checkpoint', message: 'the checkpoint signature does not match (altered, or another passphrase)' });
    await writeFile(cpPath, JSON.stringify({ ...cp, seq: 2, hash: sha256Hex(ls[2]!), mac: null }));
    const [unsigned] = await verifyAuditPaths([path], key);
    expect(unsigned!.problem!.message).to.equal('the checkpoint is unsigned but a passphrase is set (it could have been written by anyone)');
  });
});
