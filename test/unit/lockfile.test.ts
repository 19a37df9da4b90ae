/**
 * `npm ci` (the README's first command, and CI's) refuses a lock file that lacks an entry for any
 * optional dependency, even a platform binary it will never install. This machine's registry
 * mirror does not serve some of those (e.g. darwin/win builds of node-llama-cpp 3.22.1), so an
 * `npm install` here silently drops them from the lock; they were added back by hand with their
 * os/cpu so `npm ci` skips them. This test fails if a regenerated lock drops them again.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';

interface LockPackage {
  version?: string;
  optionalDependencies?: Record<string, string>;
}

describe('package-lock.json', () => {
  it('has an entry for every optional dependency, so npm ci accepts it', () => {
    const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as { packages: Record<string, LockPackage> };
    const missing: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      for (const dep of Object.keys(pkg.optionalDependencies ?? {})) {
        const nested = `${path}/node_modules/${dep}`;
        if (!lock.packages[nested] && !lock.packages[`node_modules/${dep}`]) missing.push(`${dep} (optional dependency of ${path || 'the root'})`);
      }
    }
    expect(missing, 'restore these entries (version, os, cpu, optional: true) in package-lock.json').to.deep.equal([]);
  });
});
