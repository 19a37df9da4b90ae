/**
 * The layering of src/, checked on the source: every relative import (static, `import type`,
 * re-exports and dynamic `import()`) is read from the files, so a violation fails here before a
 * reviewer has to spot it.
 *
 *   http -> policy -> generation -> actors -> runtime -> config   (root modules: errors, redact, metrics, audit)
 *
 * - http, policy and runtime never import actors (only the generation facade talks to workers);
 * - config is the ground floor: it imports nothing outside config but the root ground modules;
 * - no cycle between files, and none between top-level folders.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

/** src-relative file -> src-relative files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = (m[1] ?? m[2])!;
      deps.push(relative(SRC, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))));
    }
    graph.set(relative(SRC, file), deps);
  }
  return graph;
}

/** `http/routes/x.ts` -> `http`; a file directly in src/ is its own unit (`errors.ts`). */
const folderOf = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file);

function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of graph.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

describe('source layering', () => {
  const graph = importGraph();

  it('resolves every relative import to a file in src/', () => {
    const missing: string[] = [];
    for (const [file, deps] of graph) for (const d of deps) if (!graph.has(d)) missing.push(`${file} -> ${d}`);
    expect(missing).to.deep.equal([]);
  });

  it('http, policy and runtime never import actors (the generation facade is the one door)', () => {
    const bad: string[] = [];
    for (const [file, deps] of graph) {
      if (!['http', 'policy', 'runtime'].includes(folderOf(file))) continue;
      for (const d of deps) if (folderOf(d) === 'actors') bad.push(`${file} -> ${d}`);
    }
    expect(bad).to.deep.equal([]);
  });

  it('config imports nothing outside config but root ground modules', () => {
    const bad: string[] = [];
    for (const [file, deps] of graph) {
      if (folderOf(file) !== 'config') continue;
      for (const d of deps) if (d.includes('/') && folderOf(d) !== 'config') bad.push(`${file} -> ${d}`);
    }
    expect(bad).to.deep.equal([]);
  });

  it('has no import cycle between files', () => {
    expect(findCycle(graph)?.join(' -> ') ?? null).to.equal(null);
  });

  it('has no import cycle between top-level folders', () => {
    const folders = new Map<string, string[]>();
    for (const [file, deps] of graph) {
      const f = folderOf(file);
      const list = folders.get(f) ?? [];
      for (const d of deps) if (folderOf(d) !== f && !list.includes(folderOf(d))) list.push(folderOf(d));
      folders.set(f, list);
    }
    expect(findCycle(folders)?.join(' -> ') ?? null).to.equal(null);
  });

  it('detects a planted cycle and a planted layering violation (the checks can fail)', () => {
    const planted = new Map<string, string[]>([
      ['a.ts', ['b.ts']],
      ['b.ts', ['a.ts']],
    ]);
    expect(findCycle(planted)).to.deep.equal(['a.ts', 'b.ts', 'a.ts']);
    expect(folderOf('http/routes/x.ts')).to.equal('http');
    const sample = "import type { X } from '../actors/protocol.js';\nexport { y } from './y.js';\nconst z = await import('./z.js');";
    expect([...sample.matchAll(IMPORT_RE)].map((m) => m[1] ?? m[2])).to.deep.equal(['../actors/protocol.js', './y.js', './z.js']);
  });
});
