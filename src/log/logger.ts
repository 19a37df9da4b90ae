/**
 * The one logger of the server process and all its worker threads (pino). Lines go to stdout
 * (fd 1): JSON lines by default, pretty text when asked or, with `auto`, when stdout is a terminal.
 *
 * Every thread writes its own lines straight to fd 1 with synchronous writes: a line is one
 * write(2), so lines from different threads never interleave mid-line, none sits in a buffer that
 * a crash or `process.exit` would drop, and a worker's lines do not wait on the main thread's
 * event loop (a worker's `process.stdout` is a stream relayed through the main thread, and a
 * thread that dies loses what it had not relayed yet).
 *
 * Level and format come from `server.log_level` / `server.log_format` (INFERFLUX_LOG_LEVEL /
 * INFERFLUX_LOG_FORMAT): `configureLogging` puts the resolved values into the environment, which
 * worker threads inherit when they are spawned, so they log the same way.
 *
 * Never log a key, a bearer token or prompt/response text: callers log ids (request id, key id,
 * trace id) and counts; the redact list below is a second line of defence for objects logged whole.
 */
import { isatty } from 'node:tty';
import { isMainThread, threadId } from 'node:worker_threads';
import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogFormat, LogLevel } from '../config/types.js';

export type { Logger };

/** Field names whose values never reach a log line, at any depth used by callers. */
const REDACT = ['authorization', 'apiKey', 'api_key', 'key', 'token', 'password', 'prompt', 'messages', 'content', 'text'];
const REDACT_PATHS = [...REDACT, ...REDACT.map((k) => `*.${k}`)];

const LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function settingsFromEnv(): { level: LogLevel; format: LogFormat } {
  const level = (process.env.INFERFLUX_LOG_LEVEL ?? '').trim().toLowerCase();
  const format = (process.env.INFERFLUX_LOG_FORMAT ?? '').trim().toLowerCase();
  return {
    level: (LEVELS.includes(level) ? level : 'info') as LogLevel,
    format: (['auto', 'json', 'pretty'].includes(format) ? format : 'auto') as LogFormat,
  };
}

/** Whether `format` means pretty text on this process's stdout. */
export function wantsPretty(format: LogFormat, stdoutIsTty = isatty(1)): boolean {
  return format === 'pretty' || (format === 'auto' && stdoutIsTty);
}

/** A logger writing to `dest` (tests) or synchronously to fd 1. */
export function createLogger(level: LogLevel, format: LogFormat, dest?: DestinationStream): Logger {
  const stream =
    dest ??
    (wantsPretty(format)
      ? pretty({ destination: 1, sync: true, colorize: isatty(1), translateTime: 'SYS:standard', ignore: 'hostname' })
      : pino.destination({ dest: 1, sync: true }));
  return pino(
    {
      level,
      base: isMainThread ? { pid: process.pid } : { pid: process.pid, thread: threadId },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"info" instead of a number: readable by people and by collectors without a map.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    stream,
  );
}

let root: Logger | null = null;

/** The process-wide logger (made on first use from the environment). */
export function logger(): Logger {
  root ??= createLogger(settingsFromEnv().level, settingsFromEnv().format);
  return root;
}

/** Applies the configured level and format here and, through the environment, to workers spawned later. */
export function configureLogging(level: LogLevel, format: LogFormat): void {
  process.env.INFERFLUX_LOG_LEVEL = level;
  process.env.INFERFLUX_LOG_FORMAT = format;
  root = createLogger(level, format);
}

/**
 * The text-line interface most modules take (`log('message')` at info), with `warn` and `error`
 * for the lines that need a level. Bound to one component (`server`, `engine`, `supervisor`...).
 */
export interface Log {
  (msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function componentLog(component: string): Log {
  const child = (): Logger => logger().child({ component });
  let cached: Logger | null = null;
  let cachedRoot: Logger | null = null;
  const get = (): Logger => {
    // configureLogging may replace the root after this was made.
    if (cachedRoot !== logger()) {
      cachedRoot = logger();
      cached = child();
    }
    return cached!;
  };
  const log = ((msg: string) => get().info(msg)) as Log;
  log.warn = (msg) => get().warn(msg);
  log.error = (msg) => get().error(msg);
  return log;
}
