/**
 * A real `redis-server` for the tests that need one (shared rate limits): started on a free
 * loopback port with no persistence, stopped with SIGTERM. `.ci/run` installs the Debian package
 * when it is missing; a machine without it gets an error saying how to install it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from './server.js';

export interface RunningRedis {
  url: string;
  port: number;
  proc: ChildProcess;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.setTimeout(500, () => sock.destroy());
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) sock.end();
    });
    sock.on('close', () => resolve(got.startsWith('+PONG')));
    sock.on('error', () => resolve(false));
  });
}

export async function startRedis(port?: number): Promise<RunningRedis> {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not installed: apt-get install -y redis-server (.ci/run does this)');
  }
  const p = port ?? (await freePort());
  const proc = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const until = Date.now() + 10_000;
  while (!(await answersPing(p))) {
    if (proc.exitCode !== null || Date.now() > until) {
      proc.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${p}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    proc,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Replicas {
  redis: RunningRedis;
  a: RunningServer;
  b: RunningServer;
  /** Stops both servers, then Redis, and removes the config. */
  stop(): Promise<void>;
}

/** A redis-server and two real server processes sharing it: config `yaml`, env from `env(redis URL)`. */
export async function startReplicas(yaml: string, env: (redisUrl: string) => Record<string, string>): Promise<Replicas> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'ifx-replicas-'));
  const cfg = join(dir, 'server.yaml');
  writeFileSync(cfg, yaml);
  const vars = { INFERFLUX_CONFIG: cfg, ...env(redis.url) };
  const [a, b] = await Promise.all([startServer(vars), startServer(vars)]);
  return {
    redis,
    a,
    b,
    async stop() {
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
