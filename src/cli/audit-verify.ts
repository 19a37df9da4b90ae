#!/usr/bin/env node
/**
 * `npm run audit:verify -- <audit.log> [rotated files...]` or `... <dir>`: checks the audit log's
 * hash chain (src/actors/audit/chain.ts) and names the first altered or missing line as
 * `file:line`. Files of one log are put in chain order whatever order they are given in
 * (`audit.log.5` … `audit.log.1`, then `audit.log`); a directory is every log in it, each
 * chain checked on its own. The log's checkpoint (`audit.log.checkpoint`, see
 * src/audit/checkpoint.ts) is checked too: a log that ends before the checkpointed line, or
 * whose line there hashes differently, fails (lines cut off the end). With
 * `INFERFLUX_POLICY_PASSPHRASE` set, the checkpoint's signature is checked as well.
 * Exit 0 when every chain verifies, 1 when one does not, 2 on usage or read errors.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { verifyChain, type VerifyReport } from '../audit/chain.js';
import { CheckpointError, checkpointKey, checkpointPathFor, decodeCheckpoint, readCheckpointText, type ReadCheckpoint } from '../audit/checkpoint.js';

/** `audit.log.3` -> {base: 'audit.log', n: 3}; `audit.log` -> n 0. */
function rotationOf(path: string): { base: string; n: number } {
  const m = /^(.*)\.(\d+)$/.exec(path);
  return m ? { base: m[1]!, n: Number(m[2]) } : { base: path, n: 0 };
}

/** Groups paths by log (base name) and orders each group oldest first. */
export function chainOrder(paths: string[]): string[][] {
  const groups = new Map<string, { path: string; n: number }[]>();
  for (const p of paths) {
    const { base, n } = rotationOf(p);
    const g = groups.get(base) ?? [];
    g.push({ path: p, n });
    groups.set(base, g);
  }
  return [...groups.values()].map((g) => g.sort((a, b) => b.n - a.n).map((x) => x.path));
}

async function expand(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of args) {
    const p = resolve(a);
    if ((await stat(p)).isDirectory()) {
      for (const name of (await readdir(p)).sort()) {
        if (/\.log(\.\d+)?$/.test(name)) out.push(join(p, name));
      }
    } else if (!/\.checkpoint(\.tmp)?$/.test(p)) {
      // A shell glob (`logs/*`) brings the checkpoint along; it is read with its log, not as one.
      out.push(p);
    }
  }
  return out;
}

export interface FileReport extends VerifyReport {
  files: string[];
  /** The checkpoint that was checked, or null when the log has none. */
  checkpoint: ReadCheckpoint | null;
}

/**
 * Verifies every log among `paths` (files or directories); one report per log. `checkpointKey`
 * (checkpoint.ts `checkpointKey(passphrase)`) authenticates signed checkpoints.
 */
export async function verifyAuditPaths(paths: string[], checkpointKey: Uint8Array | null = null): Promise<FileReport[]> {
  const reports: FileReport[] = [];
  for (const files of chainOrder(await expand(paths))) {
    const newest = files[files.length - 1]!;
    const cpPath = checkpointPathFor(rotationOf(newest).base);
    const cpText = await readCheckpointText(cpPath);
    let checkpoint: ReadCheckpoint | null = null;
    let cpProblem: string | null = null;
    if (cpText !== null) {
      try {
        checkpoint = decodeCheckpoint(cpText, checkpointKey);
      } catch (err) {
        if (!(err instanceof CheckpointError)) throw err;
        cpProblem = err.message;
      }
    }
    const inputs = [];
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      const lines = text.split('\n');
      // A complete file ends in '\n'; anything after the last one is a torn or forged line and is
      // kept so the verifier reports it.
      if (lines[lines.length - 1] === '') lines.pop();
      inputs.push({ file, lines });
    }
    const report: FileReport = { ...verifyChain(inputs, checkpoint?.seq ?? -1), files, checkpoint };
    if (report.ok && cpProblem !== null) {
      report.ok = false;
      report.problem = { file: cpPath, line: 1, kind: 'checkpoint', message: cpProblem };
    } else if (report.ok && checkpoint) {
      const last = report.last;
      const lastSeq = last?.seq ?? -1;
      if (lastSeq < checkpoint.seq) {
        const n = checkpoint.seq - lastSeq;
        report.ok = false;
        report.problem = {
          file: last?.file ?? newest,
          line: (last?.line ?? 0) + 1,
          kind: 'truncated',
          message: `${n} line(s) missing at the end of the log (seq ${lastSeq + 1}..${checkpoint.seq}): the checkpoint records seq ${checkpoint.seq} written ${checkpoint.ts}`,
        };
      } else if (report.found?.hash !== checkpoint.hash) {
        report.ok = false;
        report.problem = {
          file: report.found?.file ?? last!.file,
          line: report.found?.line ?? last!.line,
          kind: 'altered',
          message: `line seq ${checkpoint.seq} does not match the checkpoint's hash (altered or replaced)`,
        };
      }
    }
    reports.push(report);
  }
  return reports;
}

export function describeReport(r: FileReport): string {
  const names = r.files.map((f) => basename(f)).join(', ');
  if (r.problem) return `FAIL ${r.problem.file}:${r.problem.line}: ${r.problem.kind}: ${r.problem.message}`;
  const start =
    r.start === 'genesis'
      ? 'from genesis'
      : r.start === 'anchored'
        ? `anchored at the first line of ${basename(r.files[0]!)} (older files were rotated away)`
        : 'empty';
  const cp = r.checkpoint
    ? `; checkpoint seq ${r.checkpoint.seq} matches (${
        r.checkpoint.authenticated ? 'signature checked' : r.checkpoint.signed ? 'signed, but not checked: set INFERFLUX_POLICY_PASSPHRASE' : 'unsigned'
      })`
    : '; no checkpoint, so lines cut off the end would not show';
  return `OK ${r.lines} line(s) in ${names}, chain ${start}${cp}`;
}

/** Verifies and prints one line per log; 0 when every chain verifies, 1 when one does not, 2 on read errors. */
export async function runAuditVerify(paths: string[], io: { out: (t: string) => void; err: (t: string) => void }, o: { json?: boolean } = {}): Promise<number> {
  let reports: FileReport[];
  try {
    reports = await verifyAuditPaths(paths, checkpointKey(process.env.INFERFLUX_POLICY_PASSPHRASE));
  } catch (err) {
    io.err(`audit-verify: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (reports.length === 0) {
    io.err('audit-verify: no audit log files found\n');
    return 2;
  }
  if (o.json) io.out(`${JSON.stringify(reports, null, 2)}\n`);
  else for (const r of reports) io.out(describeReport(r) + '\n');
  return reports.every((r) => r.ok) ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv.includes('-h') || argv.includes('--help')) {
    process.stderr.write('usage: audit-verify <audit.log> [rotated files...] | <dir>   (also: inferctl audit verify)\n');
    return 2;
  }
  return runAuditVerify(argv, { out: (t) => void process.stdout.write(t), err: (t) => void process.stderr.write(t) });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
