/** Shared helpers for config tests: a scratch cwd, a deterministic base env, and expected errors. */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config/load.js';

/** A scratch cwd with an optional config/server.yaml. */
export function makeCwd(yaml?: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifx-config-'));
  if (yaml !== undefined) {
    mkdirSync(path.join(dir, 'config'));
    writeFileSync(path.join(dir, 'config', 'server.yaml'), yaml);
  }
  return dir;
}

/** Base env that pins the core count so thread sizing is deterministic on any machine. */
export const ENV = { INFERFLUX_CORES: '8' };

/** The ConfigError loading this env (and optional YAML) throws; fails the test if none. */
export function loadError(env: NodeJS.ProcessEnv, yaml?: string): ConfigError {
  try {
    loadConfig({ env, cwd: makeCwd(yaml) });
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}
