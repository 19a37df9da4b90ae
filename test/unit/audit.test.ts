/**
 * Audit writer actor, end to end through a real worker thread. The worker is compiled JS, so the
 * client is loaded from dist/ (run `npm run build` first); its types come from src/.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '../../src/audit/event.js';

type ClientModule = typeof import('../../src/actors/audit/client.js');

const DIST_CLIENT = fileURLToPath(new URL('../../dist/actors/audit/client.js', import.meta.url));

function event(i: number, extra: Partial<AuditEvent> = {}): AuditEvent {
  return { ts: new Date(0).toISOString(), event: 'completion', requestId: `req-${i}`, model: 'tiny', promptTokens: i, ...extra };
}

async function readLines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  expect(text.endsWith('\n') || text === '').to.equal(true);
  return text.split('\n').slice(0, -1);
}

describe('audit writer actor', function () {
  let client: ClientModule;
  let dir: string;

  before(async function () {
    if (!existsSync(DIST_CLIENT)) throw new Error(`${DIST_CLIENT} is missing: run \`npm run build\` first`);
    client = (await import(DIST_CLIENT)) as ClientModule;
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ifx-audit-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes exactly N valid JSON lines, creating directories', async () => {
    const path = join(dir, 'nested', 'deeper', 'audit.log');
    const w = await client.startAuditWriter({ path });
    const n = 1000;
    for (let i = 0; i < n; i++) w.record(event(i));
    const { written } = await w.flush();
    expect(written).to.equal(n);
    const lines = await readLines(path);
    expect(lines).to.have.length(n);
    lines.forEach((line, i) => {
      // Each line is the event plus its chain fields (see audit-chain.test.ts).
      const { seq, prev, ...rest } = JSON.parse(line) as AuditEvent & { seq: number; prev: string };
      expect(rest).to.deep.equal(event(i));
      expect(seq).to.equal(i);
      expect(prev).to.match(/^[0-9a-f]{64}$/);
    });
    await w.close();
  });

  it('flush resolves only once earlier events are on disk, and acks them', async () => {
    const path = join(dir, 'audit.log');
    const w = await client.startAuditWriter({ path });
    w.record(event(1));
    w.record(event(2));
    await w.flush();
    expect(await readLines(path)).to.have.length(2);
    expect(w.stats()).to.include({ acked: 2, unacked: 0 });
    w.record(event(3));
    await w.flush();
    expect(await readLines(path)).to.have.length(3);
    await w.close();
  });

  it('cannot be made to forge lines: newlines and U+2028/2029/0085 are escaped', async () => {
    const path = join(dir, 'audit.log');
    const w = await client.startAuditWriter({ path });
    const nasty = 'a\nb\r\n{"event":"admin"}\u2028c\u2029d\u0085e';
    w.record(event(0, { detail: nasty, tenant: '\n', prompt: '"}\n{"x":1' }));
    await w.close();
    const text = await readFile(path, 'utf8');
    expect(text).to.not.match(/[\r\u2028\u2029\u0085]/);
    expect(text.split('\n')).to.have.length(2);
    const parsed = JSON.parse(text.trim()) as AuditEvent;
    expect(parsed.detail).to.equal(nasty);
    expect(parsed.tenant).to.equal('\n');
    expect(parsed.prompt).to.equal('"}\n{"x":1');
  });

  it('rotates by size; rotated files hold every line exactly once', async () => {
    const path = join(dir, 'audit.log');
    const w = await client.startAuditWriter({ path, maxBytes: 4096, keep: 100 });
    const n = 600;
    for (let i = 0; i < n; i++) w.record(event(i));
    await w.close();
    const files = (await readdir(dir)).filter((f) => !f.endsWith('.checkpoint')).sort();
    expect(files.length).to.be.greaterThan(3);
    const ids: string[] = [];
    for (const f of files) {
      const lines = await readLines(join(dir, f));
      const { size } = await import('node:fs').then((fs) => fs.statSync(join(dir, f)));
      expect(size).to.be.at.most(4096);
      for (const l of lines) ids.push((JSON.parse(l) as AuditEvent).requestId!);
    }
    expect(ids).to.have.length(n);
    expect(new Set(ids).size).to.equal(n);
    // The newest lines are in audit.log, the oldest in the highest-numbered file.
    const newest = await readLines(path);
    expect((JSON.parse(newest.at(-1)!) as AuditEvent).requestId).to.equal(`req-${n - 1}`);
  });

  it('keeps only `keep` rotated files', async () => {
    const path = join(dir, 'audit.log');
    const w = await client.startAuditWriter({ path, maxBytes: 1024, keep: 2 });
    for (let i = 0; i < 200; i++) w.record(event(i));
    await w.close();
    expect((await readdir(dir)).sort()).to.deep.equal(['audit.log', 'audit.log.1', 'audit.log.2', 'audit.log.checkpoint']);
  });

  it('close() flushes everything still batched', async () => {
    const path = join(dir, 'audit.log');
    const w = await client.startAuditWriter({ path });
    for (let i = 0; i < 10; i++) w.record(event(i));
    await w.close();
    expect(await readLines(path)).to.have.length(10);
    expect(() => w.record(event(11))).to.throw();
  });

  it('restarts a crashed worker and re-sends what it had not acknowledged', async () => {
    const path = join(dir, 'audit.log');
    let restarts = 0;
    const w = await client.startAuditWriter({ path, onRestart: () => restarts++ });
    const n = 500;
    for (let i = 0; i < n / 2; i++) w.record(event(i));
    await w._worker.terminate();
    for (let i = n / 2; i < n; i++) w.record(event(i));
    await w.flush();
    await w.close();
    expect(restarts).to.equal(1);
    const ids = new Set((await readLines(path)).map((l) => (JSON.parse(l) as AuditEvent).requestId));
    for (let i = 0; i < n; i++) expect(ids.has(`req-${i}`), `req-${i}`).to.equal(true);
  });

  it('fails to start, without restarting, when the path is unusable', async () => {
    const blocker = join(dir, 'file');
    await import('node:fs/promises').then((fs) => fs.writeFile(blocker, ''));
    let err: unknown;
    await client.startAuditWriter({ path: join(blocker, 'audit.log') }).catch((e: unknown) => (err = e));
    expect(err).to.have.property('code', 'internal_error');
  });
});
