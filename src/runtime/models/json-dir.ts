/**
 * A directory of small JSON files, one per name (the model store's manifests, the presets): read
 * one, read them all skipping what does not parse, write one atomically. Callers check that paths
 * stay inside the directory before they get here.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The parsed file, or undefined when it does not exist. */
export async function readJsonFile<T>(file: string, parse: (text: string) => T): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parse(text);
}

/** Every `*.json` file of `dir` that `parse` accepts, by file name; [] when the directory does not exist. */
export async function readJsonDir<T>(dir: string, parse: (text: string) => T): Promise<T[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: T[] = [];
  for (const f of files.filter((x) => x.endsWith('.json')).sort()) {
    try {
      out.push(parse(await readFile(join(dir, f), 'utf8')));
    } catch {
      // A half-written or foreign file is not an entry.
    }
  }
  return out;
}

/** Writes (or replaces) `target` in `dir`: a temp file beside it, then a rename; the temp file never stays. */
export async function writeJsonAtomically(dir: string, target: string, value: unknown): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
