#!/usr/bin/env node
/**
 * `inferctl`: the InferFlux command line. Talks to a running server over its HTTP API (the same
 * one every client uses), except `audit verify`, which reads audit log files.
 *
 *   inferctl quickstart | serve [server flags]
 *   inferctl status | models [list [--local] | show ID]
 *   inferctl pull REF [--quant Q] [--sha256 H] | rm NAME   (the local models directory)
 *   inferctl completion --prompt TEXT [--stream]
 *   inferctl chat --message "user:Hello" [--stream] | --interactive
 *   inferctl admin guardrails|rate-limit|api-keys|cache|fairness [--list | changes]
 *   inferctl admin models [--list | --load PATH --id ID [--default] | --load NAME [--id ID] [--default] | --unload ID | --set-default ID]
 *   inferctl admin adapters [--list | --load PATH --model BASE --id ID [--scale S] | --unload ID]
 *   inferctl admin debug [--trace REQUEST_ID]
 *   inferctl audit verify <audit.log | dir>...
 *
 * Server: `--url`, or `--host`/`--port`, or `INFERCTL_URL` (default http://127.0.0.1:8080). Key:
 * `--api-key` or `INFERCTL_API_KEY`. `--json` for scripts. Exit codes (client.ts EXIT): 0 ok,
 * 1 server error (or a log did not verify), 2 usage, 3 auth, 4 not found, 5 unreachable.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { SERVER_FLAGS, flagsToEnv } from '../config/server-flags.js';
import { SERVER_VERSION } from '../version.js';
import { runAdapters, runApiKeys, runCache, runDebug, runFairness, runGuardrails, runModels, runRateLimit } from './admin.js';
import { runAuditVerify } from './audit-verify.js';
import { runCreate } from './create.js';
import { runSession, type SessionIo } from './chat-session.js';
import { CliError, connectionFrom, EXIT, formatError, numberFlag, type GlobalOptions } from './client.js';
import { parseMessage, runChat, runCompletion, type SamplingOptions } from './generate.js';
import { runModelsList, runModelsShow, runStatus } from './inspect.js';
import { runLocalList, runPull, runRemove } from './pull.js';
import { ensureServer } from './quickstart.js';
import { serveForeground } from './serve.js';

export type CliIo = SessionIo;

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Examples under a command's --help. */
function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

function samplingOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <id>', 'model id (default: the server default model)')
    .option('--max-tokens <n>', 'upper bound on generated tokens')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)')
    .option('--seed <n>', 'sampling seed, for repeatable output')
    .option('--ignore-eos', 'keep generating past the end-of-text token, up to --max-tokens')
    .option('--stream', 'print text as it is generated (SSE; not with --json)');
}

/** `--json` is one response object: a stream of them is not offered, so the pair is a usage error. */
function checkJsonStream(o: { json?: boolean; stream?: boolean }): void {
  if (o.json && o.stream) throw new CliError('--json prints the whole response as one JSON object and cannot be combined with --stream', EXIT.usage, 'drop one of them');
}

/** INFERFLUX_HOST/PORT from the global --url or --host/--port, when given. */
function addressEnv(o: GlobalOptions): Record<string, string> {
  if (o.url !== undefined) {
    const u = new URL(connectionFrom(o).baseUrl);
    return { INFERFLUX_HOST: u.hostname.replace(/^\[|\]$/g, ''), ...(u.port ? { INFERFLUX_PORT: u.port } : {}) };
  }
  return { ...(o.host !== undefined ? { INFERFLUX_HOST: o.host } : {}), ...(o.port !== undefined ? { INFERFLUX_PORT: o.port } : {}) };
}

/** Builds the program; `io` is where output goes, so tests can run it in-process too. */
export function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('inferctl')
    .description('InferFlux command line: run, chat with, inspect and administer an InferFlux server')
    .version(SERVER_VERSION, '-v, --version', 'print the version')
    .option('--url <url>', 'server base URL (env INFERCTL_URL; default http://127.0.0.1:8080)')
    .option('--host <host>', 'server host (with --port, instead of --url); for serve and quickstart, the address to bind')
    .option('--port <port>', 'server port')
    .option('--api-key <key>', 'API key, sent as a Bearer token (env INFERCTL_API_KEY; none: no Authorization header)')
    .option('--timeout <seconds>', 'per-request timeout', '600')
    .option('--json', 'machine-readable output: one JSON document on stdout')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(add --help for usage and examples)')
    .exitOverride();
  program.addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 server error, 2 usage, 3 auth (401/403), 4 not found, 5 server unreachable.

Examples:
  $ inferctl quickstart                         # demo model + local server + chat, in one command
  $ inferctl serve --port 8080 --model ./models/llama.gguf
  $ inferctl chat -i                            # interactive chat with the running server
  $ inferctl status --json
  $ INFERCTL_API_KEY=sk-... inferctl admin api-keys --list
`,
  );
  const conn = () => connectionFrom(program.opts<GlobalOptions>());
  const json = (o: { json?: boolean } = {}) => program.opts<{ json?: boolean }>().json === true || o.json === true;

  const serve = examples(
    program
      .command('serve')
      .description('run the server in the foreground (Ctrl-C stops it gracefully); flags map onto INFERFLUX_* env variables')
      .addHelpText('before', 'Address: the global --host/--port (or --url), e.g. inferctl serve --port 9000; default: the config (127.0.0.1:8080).\n'),
    ['inferctl serve', 'inferctl serve --port 9000 --model ./models/llama.gguf', 'inferctl serve --host 0.0.0.0 --api-keys "sk-team:generate|read,sk-ops:admin"'],
  );
  // --host and --port are the global options (commander hands them to the program wherever they
  // stand): the address inferctl talks to is the address the server binds.
  for (const f of SERVER_FLAGS) if (f.name !== 'host' && f.name !== 'port') serve.option(`--${f.name} <${f.value.toLowerCase().replace(/[^a-z]+/g, '-')}>`, `${f.help} (env ${f.env})`);
  serve.action(async (o: Record<string, string>) => setExit(await serveForeground({ ...flagsToEnv(o), ...addressEnv(program.opts<GlobalOptions>()) })));

  examples(
    program
      .command('quickstart')
      .description('use the server at --url, or start one with the demo model (generated, no download); then chat')
      .option('-m, --model <path>', 'a GGUF file for the started server instead of the demo model')
      .option('--wait <seconds>', 'how long to wait for the server to be ready', '120')
      .option('--log <file>', 'log file of the started server (default: in the temp dir, printed)')
      .option('--max-tokens <n>', 'upper bound on tokens per answer', '256')
      .action(async (o: { model?: string; wait: string; log?: string; maxTokens: string }) => {
        const c = conn();
        const wait = numberFlag('wait', o.wait, { min: 1 })!;
        await ensureServer(c, { model: o.model, wait, log: o.log }, (t) => io.err(`${t}\n`));
        if ((await runSession(c, [], { maxTokens: o.maxTokens }, io)) > 0) setExit(EXIT.server);
      }),
    ['inferctl quickstart', 'inferctl --port 9000 quickstart', 'echo "Hello" | inferctl quickstart   # one answer, then exit'],
  );

  examples(
    program
      .command('status')
      .description('health, readiness, pools and queue depth of the server (exit 1 when not ready)')
      .action(async () => {
        if (!(await runStatus(conn(), { json: json() }, io))) setExit(EXIT.server);
      }),
    ['inferctl status', 'inferctl status --json | jq .queue'],
  );

  const models = examples(program.command('models').description('the models the server serves'), ['inferctl models', 'inferctl models show demo', 'inferctl models list --json']);
  models
    .command('list', { isDefault: true })
    .description('list the model ids (--local: the pulled models in the models directory)')
    .option('--local', 'list the local models directory instead of asking the server')
    .option('--models-dir <dir>', 'models directory (default: server.models_dir / INFERFLUX_MODELS_DIR / the user cache dir)')
    .action(async (o: { local?: boolean; modelsDir?: string }) =>
      o.local || o.modelsDir !== undefined ? runLocalList({ modelsDir: o.modelsDir, json: json() }, io) : runModelsList(conn(), { json: json() }, io),
    );
  models
    .command('show')
    .description('one model: load state, architecture, context length')
    .argument('<id>', 'model id')
    .action(async (id: string) => runModelsShow(conn(), id, { json: json() }, io));

  examples(
    samplingOptions(program.command('completion').description('a text completion (POST /v1/completions)'))
      .requiredOption('-p, --prompt <text>', 'the prompt')
      .action(async (o: SamplingOptions & { prompt: string }) => {
        const opts = { ...o, json: json() };
        checkJsonStream(opts);
        await runCompletion(conn(), o.prompt, opts, io);
      }),
    ['inferctl completion -p "Once upon a time" --max-tokens 32 --stream', 'inferctl completion -p "2+2=" --temperature 0 --json'],
  );

  examples(
    samplingOptions(program.command('chat').description('a chat completion (POST /v1/chat/completions), or an interactive session'))
      .option('--message <role:text>', 'a message, repeatable: "user:Hello", "system:Be brief" (no role = user)', collect)
      .option('-s, --system <text>', 'a system message first')
      .option('-i, --interactive', 'a session: prompt, history, multi-line input, streamed answers, Ctrl-C cancels an answer; /help inside')
      .action(async (o: SamplingOptions & { message?: string[]; system?: string; interactive?: boolean }) => {
        const opts = { ...o, json: json() };
        checkJsonStream(opts);
        const messages: ChatCompletionMessageParam[] = [
          ...(o.system !== undefined ? [{ role: 'system' as const, content: o.system }] : []),
          ...(o.message ?? []).map(parseMessage),
        ];
        if (o.interactive) {
          if (opts.json) throw new CliError('--json is for one-shot requests, not an interactive session', EXIT.usage, 'drop --json, or use --message');
          if ((await runSession(conn(), messages, opts, io)) > 0) setExit(EXIT.server);
          return;
        }
        await runChat(conn(), messages, opts, io);
      }),
    [
      'inferctl chat -i',
      'inferctl chat --system "Be brief" --message "user:Hello" --stream',
      'printf "first question\\nsecond question\\n" | inferctl chat -i   # one message per line',
      'inferctl chat --message Hello --json | jq -r ".choices[0].message.content"',
    ],
  );
  examples(
    program
      .command('pull')
      .description('download a GGUF from the hub (or a URL) into the local models directory: resumable, SHA-256 verified, GGUF-checked')
      .argument('<ref>', 'owner/repo[:quant], hf://owner/repo/file.gguf or an https:// URL')
      .option('-q, --quant <quant>', 'quantisation to pick from the repository (Q4_K_M, Q8_0, ...); default: Q4_K_M, then the usual order')
      .option('--sha256 <hex>', 'expected SHA-256 of the file (must match the hub\'s when it lists one)')
      .option('--name <name>', 'store the model under this name instead of the reference')
      .option('--models-dir <dir>', 'models directory (default: server.models_dir / INFERFLUX_MODELS_DIR / the user cache dir)')
      .action(async (ref: string, o: { quant?: string; sha256?: string; name?: string; modelsDir?: string }) => runPull(ref, { ...o, json: json() }, io)),
    [
      'inferctl pull bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M',
      'inferctl pull hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q8_0.gguf',
      'inferctl pull https://example.com/model.gguf --sha256 <hex> --name my-model',
      'INFERFLUX_HUB_URL=https://hub.internal inferctl pull team/model --quant Q8_0',
    ],
  );
  examples(
    program
      .command('create')
      .description('create a model from a Modelfile (FROM a served model, SYSTEM, PARAMETER, MESSAGE, LICENSE), as ollama create does; needs an admin key')
      .argument('<name>', 'the new model\'s name, as clients will send it')
      .requiredOption('-f, --file <path>', 'the Modelfile')
      .action(async (name: string, o: { file: string }) => runCreate(conn(), name, { file: o.file, json: json() }, io)),
    ['inferctl create mario -f Modelfile', 'printf \'FROM demo\\nSYSTEM You are Mario.\\nPARAMETER temperature 0.7\\n\' > Modelfile && inferctl create mario -f Modelfile'],
  );
  examples(
    program
      .command('rm')
      .description('remove a pulled model from the local models directory (its file goes when no other name uses it)')
      .argument('<name>', 'the name shown by: inferctl models list --local')
      .option('--models-dir <dir>', 'models directory (default: server.models_dir / INFERFLUX_MODELS_DIR / the user cache dir)')
      .action(async (name: string, o: { modelsDir?: string }) => runRemove(name, { ...o, json: json() }, io)),
    ['inferctl rm bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M', 'inferctl models list --local'],
  );

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
    .option('--key <secret>', 'register this key (8-512 characters, no whitespace) instead of generating one; it is not shown back')
    .option('--key-sha256 <hex>', 'register a key by its SHA-256 only (sha256sum of the key), so the secret never reaches the server')
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
  admin
    .command('models')
    .description('served models: list with state and capabilities (--list, or no flags), --load a GGUF, --unload (drains first) or --set-default')
    .option('--list', 'list the models, their state, SHA-256, capabilities and estimated memory')
    .option('--load <path|name>', 'load a GGUF file (inside server.admin_load_dir when the server sets one) with --id, or a pulled model by its name (owner/repo:quant; --id defaults to it)')
    .option('--id <id>', 'id clients send as "model" for the loaded file')
    .option('--default', 'make the loaded model the default once it is ready')
    .option('--unload <id>', 'stop serving this model: running requests finish, new ones get 503 then 404')
    .option('--set-default <id>', 'serve this model when a request names none')
    .action(async (o) => runModels(conn(), o, io));
  admin
    .command('adapters')
    .description('LoRA adapters: list (--list, or no flags), --load an adapter GGUF for a base model, --unload (drains first); needs an admin or adapter-manager key')
    .option('--list', 'list the loaded adapters with their model, scale, rank, SHA-256 and running requests')
    .option('--load <path>', 'load this LoRA adapter GGUF (inside server.admin_load_dir when the server sets one) with --model and --id')
    .option('--model <id>', 'the base model the adapter applies to')
    .option('--id <id>', 'adapter id; requests send "model": "BASE:ID" or "adapter": "ID"')
    .option('--scale <s>', 'adapter scale, in (0, 16] (default 1)')
    .option('--unload <id>', 'stop serving this adapter: running requests finish, new ones get 503 then 404')
    .action(async (o) => runAdapters(conn(), o, io));
  admin
    .command('debug')
    .description("what /debug shows: the last finished requests' token traces (queue, prefill, decode, gaps between tokens), every engine worker's state and step split, loaded adapters")
    .option('--trace <request-id>', "one request's whole trace: when each of its tokens reached the server")
    .action(async (o) => runDebug(conn(), o, io));
  // The admin commands always print the server's JSON view, so --json changes nothing there.
  const adminExamples: Record<string, string[]> = {
    guardrails: ['inferctl admin guardrails --list', 'inferctl admin guardrails --set "launch codes,classified" --pii redact --pii-output on'],
    'rate-limit': ['inferctl admin rate-limit', 'inferctl admin rate-limit --set 200 --tokens-per-minute 100000'],
    'api-keys': [
      'inferctl admin api-keys --list',
      'inferctl admin api-keys --add ci-bot --scopes generate,read --tenant team-x',
      'inferctl admin api-keys --add legacy --scopes generate --key-sha256 "$(printf %s "$OLD_KEY" | sha256sum | cut -d" " -f1)"',
      'inferctl admin api-keys --remove key:37cf9cc6406f',
    ],
    cache: ['inferctl admin cache --list', 'inferctl admin cache --warm "You are a helpful assistant."', 'inferctl admin cache --flush'],
    fairness: ['inferctl admin fairness', 'inferctl admin fairness --preemption on --max-timeslice-tokens 64'],
    debug: ['inferctl admin debug', 'inferctl admin debug --trace "$REQUEST_ID"   # the x-request-id of a response'],
    adapters: ['inferctl admin adapters --list', 'inferctl admin adapters --load adapters/support-v2.gguf --model qwen --id support --scale 0.8', 'inferctl admin adapters --unload support'],
    models: ['inferctl admin models --list', 'inferctl admin models --load /models/qwen2.5-0.5b-q8_0.gguf --id qwen --default', 'inferctl admin models --load Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M', 'inferctl admin models --unload old-model'],
  };
  for (const cmd of admin.commands) examples(cmd, adminExamples[cmd.name()] ?? []);
  examples(admin, ['inferctl admin guardrails --list   # INFERCTL_API_KEY holds an admin key']);

  const audit = examples(program.command('audit').description('audit log tools'), ['inferctl audit verify logs/']);
  examples(
    audit
      .command('verify')
      .description("check an audit log's hash chain; names the first altered or missing line (exit 1 when one does not verify)")
      .argument('<paths...>', 'audit.log and its rotated files, or a directory')
      .action(async (paths: string[]) => setExit(await runAuditVerify(paths, io, { json: json() }))),
    ['inferctl audit verify logs/', 'inferctl audit verify logs/audit.log logs/audit.log.1', 'inferctl audit verify logs/ --json'],
  );

  return program;
}

/** `inferctl admin cache` for that command. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Runs one command line; resolves to the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = Math.max(code, c)));
  let ran = program; // the command whose action runs, named in a usage error's next step
  program.hook('preAction', (_, action) => void (ran = action));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are exits with code 0; anything else commander refused is usage.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    // A usage error without its own next step points at the command's help.
    const usage = err instanceof CliError && err.exitCode === EXIT.usage && err.hint === undefined;
    io.err(formatError(usage ? new CliError(err.message, EXIT.usage, `see ${commandPath(ran)} --help for the flags and examples`) : err));
    return err instanceof CliError ? err.exitCode : EXIT.server;
  }
}

// Run when executed (directly or through the npm bin symlink), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const io: CliIo = {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    input: process.stdin,
    terminal: process.stdout,
  };
  runCli(process.argv.slice(2), io).then((code) => (process.exitCode = code));
}
