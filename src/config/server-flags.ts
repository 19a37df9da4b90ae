/**
 * The server's command-line flags: each one is a name for an `INFERFLUX_*` variable (the one way
 * config reaches the server besides the YAML file), so `node dist/main.js --port 9000` and
 * `inferctl serve --port 9000` mean exactly `INFERFLUX_PORT=9000`. One table serves both; the
 * values are checked where the env ones are, by `loadConfig`.
 */
import { SERVER_VERSION } from '../version.js';
import { parseArgs } from 'node:util';

export interface ServerFlag {
  /** Long flag name without dashes. */
  name: string;
  /** Value placeholder in help. */
  value: string;
  env: string;
  help: string;
}

export const SERVER_FLAGS: readonly ServerFlag[] = [
  { name: 'port', value: 'N', env: 'INFERFLUX_PORT', help: 'TCP port (0 picks a free one)' },
  { name: 'host', value: 'ADDR', env: 'INFERFLUX_HOST', help: 'interface to bind (0.0.0.0 exposes the server to the network)' },
  { name: 'model', value: 'PATH', env: 'INFERFLUX_MODEL_PATH', help: 'serve this GGUF file as the default model (id: its file name)' },
  { name: 'models', value: 'SPEC', env: 'INFERFLUX_MODELS', help: 'several models: "id=a,path=a.gguf,default=true;id=b,path=b.gguf"' },
  { name: 'config', value: 'FILE', env: 'INFERFLUX_CONFIG', help: 'YAML config file (default: config/server.yaml under the working directory)' },
  { name: 'api-keys', value: 'SPEC', env: 'INFERFLUX_API_KEYS', help: 'API keys "key[:scope|scope][@tenant],..." (turns auth on)' },
  { name: 'auth', value: 'on|off|auto', env: 'INFERFLUX_AUTH_ENABLED', help: 'require keys: on, off, or auto (the default: on when keys or OIDC are configured)' },
  { name: 'audit-log', value: 'FILE', env: 'INFERFLUX_AUDIT_LOG', help: 'audit log path' },
  { name: 'context-size', value: 'N', env: 'INFERFLUX_CONTEXT_SIZE', help: 'context length per sequence, in tokens' },
  { name: 'decode-pool-size', value: 'N', env: 'INFERFLUX_DECODE_POOL_SIZE', help: 'engine workers per model' },
];

/** `--auth on` -> `true`: the env variable takes booleans and `auto`. */
function envValue(flag: ServerFlag, v: string): string {
  if (flag.name !== 'auth') return v;
  if (/^(on|true|yes|1)$/i.test(v)) return 'true';
  if (/^(off|false|no|0)$/i.test(v)) return 'false';
  return v;
}

/** The env variables for flag values given as `{ 'api-keys': '...' }` or camelCase `{ apiKeys: '...' }`. */
export function flagsToEnv(values: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const f of SERVER_FLAGS) {
    const camel = f.name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = values[f.name] ?? values[camel];
    if (typeof v === 'string') env[f.env] = envValue(f, v);
  }
  return env;
}


export function serverUsage(command = 'node dist/main.js'): string {
  const width = Math.max(...SERVER_FLAGS.map((f) => f.name.length + f.value.length + 3));
  const lines = SERVER_FLAGS.map((f) => `  ${`--${f.name} ${f.value}`.padEnd(width)}  ${f.help} (env ${f.env})`);
  return [
    `usage: ${command} [flags]`,
    '',
    'Runs the InferFlux server in the foreground (SIGINT/SIGTERM stop it gracefully). Config is the',
    'embedded default, then the YAML file, then INFERFLUX_* env variables, then these flags.',
    '',
    ...lines,
    `  ${'-h, --help'.padEnd(width)}  print this help`,
    `  ${'-v, --version'.padEnd(width)}  print the version`,
    '',
    'Examples:',
    `  ${command} --port 9000 --model ./models/llama.gguf`,
    `  ${command} --host 0.0.0.0 --api-keys "sk-team-a:generate|read@team-a,sk-ops:admin"`,
  ].join('\n');
}

export type ServerArgv = { kind: 'help' } | { kind: 'version' } | { kind: 'error'; message: string } | { kind: 'run'; env: Record<string, string> };

export function parseServerArgv(argv: string[]): ServerArgv {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const f of SERVER_FLAGS) options[f.name] = { type: 'string' };
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  return { kind: 'run', env: flagsToEnv(values) };
}

/**
 * Handles the server's argv before anything starts: help and version print and stop (exit 0), an
 * unknown flag is a usage error (exit 2), and flags become env variables. Returns true when the
 * server must not start.
 */
export function handleServerArgv(argv: string[], command?: string): boolean {
  const parsed = parseServerArgv(argv);
  switch (parsed.kind) {
    case 'help':
      process.stdout.write(`${serverUsage(command)}\n`);
      return true;
    case 'version':
      process.stdout.write(`inferflux ${SERVER_VERSION}\n`);
      return true;
    case 'error':
      process.stderr.write(`inferflux: ${parsed.message}\n${serverUsage(command)}\n`);
      process.exitCode = 2;
      return true;
    case 'run':
      Object.assign(process.env, parsed.env);
      return false;
  }
}
