/**
 * The actor system and its generation facade in-process (from dist/, where the worker files are),
 * on the tiny model: for tests that need to reach the threads or drive the facade directly.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyModel } from './server.js';

const dist = (p: string) => new URL(`../../dist/${p}`, import.meta.url).href;

export interface InProcessActors {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  system: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  gateway: any;
  /** Sequences the scheduler counts as running (every model and phase): 0 once it has every release. */
  activeSequences(): Promise<number>;
  stop(): Promise<void>;
}

/** One engine worker, one thread; `env` adds INFERFLUX_* settings, `yaml` a config/server.yaml. */
export async function startActors(env: Record<string, string> = {}, yaml?: string): Promise<InProcessActors> {
  const dir = mkdtempSync(join(tmpdir(), 'ifx-actors-'));
  if (yaml !== undefined) {
    mkdirSync(join(dir, 'config'));
    writeFileSync(join(dir, 'config', 'server.yaml'), yaml);
  }
  const { loadConfig } = await import(dist('config/load.js'));
  const { Metrics } = await import(dist('metrics.js'));
  const { ActorSystem } = await import(dist('actors/system.js'));
  const { ActorGateway } = await import(dist('generation/gateway.js'));
  const config = loadConfig({
    cwd: dir,
    env: {
      INFERFLUX_MODEL_PATH: await tinyModel(),
      INFERFLUX_AUDIT_LOG: join(dir, 'audit.log'),
      INFERFLUX_DECODE_POOL_SIZE: '1',
      INFERFLUX_THREADS_PER_WORKER: '1',
      INFERFLUX_CORES: '2',
      ...env,
    },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const system = await ActorSystem.start(config, metrics, () => undefined);
  const gateway = await ActorGateway.create(config, system, metrics);
  return {
    system,
    gateway,
    async activeSequences() {
      const { values } = await metrics.activeSequences.get();
      return values.reduce((n: number, v: { value: number }) => n + v.value, 0);
    },
    async stop() {
      await system.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
