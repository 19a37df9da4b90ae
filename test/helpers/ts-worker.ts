/**
 * Worker threads running TypeScript under mocha: a worker does not inherit tsx's loader hooks, so
 * an eval bootstrap registers tsx (the ESM build of its API: the CJS one cannot register hooks from
 * a worker) before importing the real module.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** URL of tsx's ESM API, whose `register()` installs its hooks in the calling thread. */
export function tsxEsmApiUrl(): string {
  const pkgPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return new URL(pkg.exports['./esm/api']!.import.default, pathToFileURL(pkgPath)).href;
}

/** Starts a worker thread that runs the TypeScript module at `file` with `workerData`. */
export function startTsWorker(file: URL, workerData: unknown): Worker {
  const code = `
    const { parentPort } = require('node:worker_threads');
    (async () => {
      (await import(${JSON.stringify(tsxEsmApiUrl())})).register();
      await import(${JSON.stringify(file.href)});
    })().catch((e) => { parentPort.postMessage({ error: String((e && e.stack) || e) }); });
  `;
  return new Worker(code, { eval: true, workerData });
}
