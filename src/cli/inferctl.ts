#!/usr/bin/env node
/**
 * `inferctl`: the InferFlux command line. Talks to a running server over its HTTP API (the same
 * one every client uses), except `audit verify`, which reads audit log files.
 *
 *   inferctl status | models
 *   inferctl completion --prompt TEXT [--stream]
 *   inferctl chat --message "user:Hello" [--stream] | --interactive
 *   inferctl admin guardrails|rate-limit|api-keys|cache|fairness [--list | changes]
 *   inferctl audit verify <audit.log | dir>...
 *
 * Server: `--url`, or `--host`/`--port`, or `INFERCTL_URL` (default http://127.0.0.1:8080). Key:
 * `--api-key` or `INFERCTL_API_KEY`. Exit codes: 0 done, 1 the server or the network failed (or
 * a log did not verify), 2 usage.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { runApiKeys, runCache, runFairness, runGuardrails, runModels, runRateLimit, runStatus } from './admin.js';
import { runAuditVerify } from './audit-verify.js';
import { CliError, connectionFrom, type GlobalOptions } from './client.js';
import { parseMessage, runChat, runCompletion, runInteractive, type Output, type SamplingOptions } from './generate.js';

export interface CliIo extends Output {
  input: NodeJS.ReadableStream;
}

/** The package version (dist/cli and src/cli are both two levels below the package root). */
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function samplingOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <id>', 'model id (default: the server default model)')
    .option('--max-tokens <n>', 'upper bound on generated tokens')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)')
    .option('--seed <n>', 'sampling seed, for repeatable output')
    .option('--stream', 'print text as it is generated (SSE)')
    .option('--json', 'print the whole JSON response (not with --stream)');
}

/** Builds the program; `io` is where output goes, so tests can run it in-process too. */
export function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('inferctl')
    .description('InferFlux command line: generate, inspect and administer an InferFlux server')
    .version(VERSION)
    .option('--url <url>', 'server base URL (env INFERCTL_URL; default http://127.0.0.1:8080)')
    .option('--host <host>', 'server host (with --port, instead of --url)')
    .option('--port <port>', 'server port')
    .option('--api-key <key>', 'API key, sent as a Bearer token (env INFERCTL_API_KEY)')
    .option('--timeout <seconds>', 'per-request timeout', '600')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError()
    .exitOverride();
  const conn = () => connectionFrom(program.opts<GlobalOptions>());

  program
    .command('status')
    .description('health, readiness and models of the server')
    .action(async () => {
      if (!(await runStatus(conn(), io))) setExit(1);
    });

  program
    .command('models')
    .description('list the model ids the server serves')
    .action(async () => runModels(conn(), io));

  samplingOptions(program.command('completion').description('a text completion (POST /v1/completions)'))
    .requiredOption('-p, --prompt <text>', 'the prompt')
    .action(async (o: SamplingOptions & { prompt: string }) => runCompletion(conn(), o.prompt, o, io));

  samplingOptions(program.command('chat').description('a chat completion (POST /v1/chat/completions), or an interactive session'))
    .option('--message <role:text>', 'a message, repeatable: "user:Hello", "system:Be brief" (no role = user)', collect)
    .option('-s, --system <text>', 'a system message first')
    .option('-i, --interactive', 'read one user message per line from stdin, keeping the transcript (/exit ends)')
    .action(async (o: SamplingOptions & { message?: string[]; system?: string; interactive?: boolean }) => {
      const messages: ChatCompletionMessageParam[] = [
        ...(o.system !== undefined ? [{ role: 'system' as const, content: o.system }] : []),
        ...(o.message ?? []).map(parseMessage),
      ];
      if (o.interactive) {
        if ((await runInteractive(conn(), messages, o, io, io.input)) > 0) setExit(1);
        return;
      }
      await runChat(conn(), messages, o, io);
    });

  const admin = program.command('admin').description('change the live policy (needs an admin key); every change is persisted and audited');
  admin
    .command('guardrails')
    .description('show (--list, or no flags) or change guardrails')
    .option('--list', 'show the live guardrails')
    .option('--set <terms>', 'replace the blocklist: comma-separated terms ("" clears it)')
    .addOption(new Option('--pii <action>', 'PII detectors on prompts and output').choices(['off', 'redact', 'block']))
    .option('--pii-kinds <kinds>', 'comma-separated: email,phone,credit_card,iban,secret')
    .option('--pii-output <on|off>', 'also filter streamed output (off: prompts only)')
    .option('--opa-endpoint <url>', 'external policy engine, http(s):// or file:// ("" turns it off)')
    .option('--opa-timeout-ms <ms>', 'external policy call timeout')
    .addOption(new Option('--opa-fail-mode <mode>', 'when the external engine fails').choices(['open', 'closed']))
    .action(async (o) => runGuardrails(conn(), o, io));
  admin
    .command('rate-limit')
    .description('show (--list, or no flags) or change rate limits (per minute; 0 = unlimited)')
    .option('--list', 'show the live limits')
    .option('--set <n>', 'requests per minute per key')
    .option('--tokens-per-minute <n>', 'prompt + completion tokens per minute per key')
    .option('--tenant-requests-per-minute <n>', 'requests per minute per tenant')
    .option('--tenant-tokens-per-minute <n>', 'tokens per minute per tenant')
    .action(async (o) => runRateLimit(conn(), o, io));
  admin
    .command('api-keys')
    .description('list (--list, or no flags), create (--add) or revoke (--remove) API keys of the policy store')
    .option('--list', 'list keys (ids and scopes, never secrets)')
    .option('--add [label]', 'create a key (shown once) with --scopes, optional --tenant, --priority')
    .option('--scopes <scopes>', 'comma-separated: admin,read,generate,adapter-manager')
    .option('--tenant <tenant>', 'tenant of the new key')
    .option('--priority <n>', 'default request priority of the new key')
    .option('--remove <id>', 'revoke the key with this id')
    .action(async (o) => runApiKeys(conn(), o, io));
  admin
    .command('cache')
    .description('prefix cache: status per engine worker (--list, or no flags), --warm a prefix, or --flush every tier')
    .option('--list', 'show the cache status')
    .option('--warm <prompt>', 'run this prompt once so its KV stays cached')
    .option('-m, --model <id>', 'model to warm (default: the server default model)')
    .option('--flush', 'drop every cached prefix')
    .action(async (o) => runCache(conn(), o, io));
  admin
    .command('fairness')
    .description('show (--list, or no flags) or change the scheduler fairness settings (live, not persisted)')
    .option('--list', 'show the live settings')
    .option('--preemption <on|off>', 'let higher-priority requests preempt running ones')
    .option('--high-priority-threshold <n>', 'priority from which a request may preempt')
    .option('--max-timeslice-tokens <n>', 'tokens a stream runs before yielding to waiting peers (0 = off)')
    .action(async (o) => runFairness(conn(), o, io));

  program
    .command('audit')
    .description('audit log tools')
    .command('verify')
    .description("check an audit log's hash chain; names the first altered or missing line")
    .argument('<paths...>', 'audit.log and its rotated files, or a directory')
    .action(async (paths: string[]) => setExit(await runAuditVerify(paths, io)));

  return program;
}

/** Runs one command line; resolves to the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = Math.max(code, c)));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are exits with code 0; anything else commander refused is usage.
      return err.exitCode === 0 ? 0 : 2;
    }
    io.err(`inferctl: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}

// Run when executed (directly or through the npm bin symlink), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const io: CliIo = { out: (t) => void process.stdout.write(t), err: (t) => void process.stderr.write(t), input: process.stdin };
  runCli(process.argv.slice(2), io).then((code) => (process.exitCode = code));
}
