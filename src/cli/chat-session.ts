/**
 * `inferctl chat --interactive` (and the chat `inferctl quickstart` opens): a multi-turn session
 * that keeps the transcript. On a terminal: a prompt, line editing and history (readline), multi-
 * line input (a trailing `\` continues the line; `"""` opens and closes a block), answers streamed
 * as they are generated, Ctrl-C cancels the answer (the HTTP request is aborted, so the server
 * stops generating) and keeps the session, Ctrl-C twice at an empty prompt or Ctrl-D leaves.
 * Piped input works the same without prompt or colour: one message per line (answers on stdout,
 * everything else on stderr).
 */
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { formatError, type Connection } from './client.js';
import { chatTurn, client, type Output, type SamplingOptions } from './generate.js';

export interface SessionIo extends Output {
  input: NodeJS.ReadableStream;
  /** The terminal, when stdout is one: readline draws the prompt and echoes input on it. */
  terminal?: NodeJS.WriteStream | undefined;
  env?: NodeJS.ProcessEnv;
}

export const SESSION_HELP = `commands:
  /help          this list
  /reset         forget the conversation (keeps the --system message)
  /save FILE     write the transcript to FILE as JSON
  /model [ID]    show or switch the model (inferctl models list shows the ids)
  /exit          leave (also /quit, Ctrl-D, or Ctrl-C twice at an empty prompt)
input:
  a line ending in \\ continues on the next line; """ on its own line opens and closes a block
  Ctrl-C while an answer streams cancels it; the conversation goes on`;

/** ANSI styling only for a terminal that wants it (NO_COLOR, FORCE_COLOR and TERM as Node reads them). */
function styler(terminal: NodeJS.WriteStream | undefined, env: NodeJS.ProcessEnv) {
  const on = terminal !== undefined && env.NO_COLOR === undefined && terminal.hasColors?.(env) === true;
  const wrap = (open: string) => (t: string) => (on ? `\x1b[${open}m${t}\x1b[0m` : t);
  return { prompt: wrap('1;36'), dim: wrap('2'), error: wrap('31') };
}

/** Multi-line input: collects lines until a message is complete. */
export class InputCollector {
  private lines: string[] = [];
  private block = false;

  get pending(): boolean {
    return this.lines.length > 0 || this.block;
  }

  clear(): void {
    this.lines = [];
    this.block = false;
  }

  /** Feeds one line; returns the complete message, or null while more lines are expected. */
  push(line: string): string | null {
    if (this.block) {
      if (line.trimEnd().endsWith('"""')) {
        this.lines.push(line.trimEnd().slice(0, -3));
        return this.take();
      }
      this.lines.push(line);
      return null;
    }
    if (this.lines.length === 0 && line.trimStart().startsWith('"""')) {
      const rest = line.trimStart().slice(3);
      if (rest.trimEnd().endsWith('"""') && rest.trim() !== '') return rest.trimEnd().slice(0, -3);
      this.block = true;
      if (rest.trim() !== '') this.lines.push(rest);
      return null;
    }
    if (line.endsWith('\\')) {
      this.lines.push(line.slice(0, -1));
      return null;
    }
    this.lines.push(line);
    return this.take();
  }

  private take(): string {
    const text = this.lines.join('\n');
    this.clear();
    return text;
  }
}

function isAbort(err: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (err instanceof Error && (err.name === 'AbortError' || err.name === 'APIUserAbortError'));
}

/** Runs the session until /exit or the end of input; resolves to the number of failed turns. */
export async function runSession(c: Connection, start: ChatCompletionMessageParam[], o: SamplingOptions, io: SessionIo): Promise<number> {
  const env = io.env ?? process.env;
  const tty = (io.input as { isTTY?: boolean }).isTTY === true && io.terminal?.isTTY === true;
  const style = styler(tty ? io.terminal : undefined, env);
  const api = client(c);
  const opts: SamplingOptions = { ...o, stream: true };
  let transcript = [...start];
  const collector = new InputCollector();
  const rl = createInterface({ input: io.input, output: tty ? io.terminal : undefined, terminal: tty, historySize: 500 });
  const mainPrompt = style.prompt('>>> ');
  const morePrompt = style.prompt('... ');
  const prompt = (): void => {
    if (!tty) return;
    rl.setPrompt(collector.pending ? morePrompt : mainPrompt);
    rl.prompt();
  };
  const note = (t: string): void => io.err(`${style.dim(t)}\n`);

  let answering: AbortController | null = null;
  let armed = false; // Ctrl-C pressed once at an empty prompt
  rl.on('SIGINT', () => {
    if (answering) {
      answering.abort();
      return;
    }
    if (rl.line !== '' || collector.pending) {
      collector.clear();
      // Clear the line being edited (Ctrl-E, then Ctrl-U deletes everything before the cursor).
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
      io.err('^C\n');
      armed = false;
      prompt();
      return;
    }
    if (armed) {
      io.err('\n');
      rl.close();
      return;
    }
    armed = true;
    io.err('\n');
    note('(Ctrl-C again, /exit or Ctrl-D to leave)');
    prompt();
  });

  let failed = 0;
  if (tty) note(`inferctl chat with ${o.model ?? 'the default model'} at ${c.baseUrl}: /help for commands, Ctrl-D to leave`);
  prompt();
  for await (const line of rl) {
    armed = false;
    const text = collector.push(line);
    if (text === null) {
      prompt();
      continue;
    }
    const trimmed = text.trim();
    if (trimmed === '') {
      prompt();
      continue;
    }
    if (trimmed.startsWith('/') && !text.includes('\n')) {
      const [cmd, ...args] = trimmed.split(/\s+/);
      const arg = args.join(' ');
      if (cmd === '/exit' || cmd === '/quit') break;
      if (cmd === '/help') io.err(`${SESSION_HELP}\n`);
      else if (cmd === '/reset') {
        transcript = [...start];
        note('(conversation cleared)');
      } else if (cmd === '/save') {
        if (arg === '') io.err(style.error('usage: /save FILE') + '\n');
        else {
          try {
            writeFileSync(arg, `${JSON.stringify({ model: opts.model ?? null, server: c.baseUrl, messages: transcript }, null, 2)}\n`);
            note(`(saved ${transcript.length} message(s) to ${arg})`);
          } catch (err) {
            io.err(style.error(`cannot save: ${err instanceof Error ? err.message : String(err)}`) + '\n');
          }
        }
      } else if (cmd === '/model') {
        if (arg !== '') opts.model = arg;
        note(`(model: ${opts.model ?? 'the server default'})`);
      } else io.err(style.error(`unknown command ${cmd}: /help lists the commands`) + '\n');
      prompt();
      continue;
    }
    transcript.push({ role: 'user', content: text });
    const controller = new AbortController();
    answering = controller;
    try {
      const answer = await chatTurn(api, c, transcript, opts, io, controller.signal);
      transcript.push({ role: 'assistant', content: answer });
    } catch (err) {
      transcript.pop();
      if (isAbort(err, controller.signal)) {
        io.out('\n');
        note('(answer cancelled; the message was dropped)');
      } else {
        failed++;
        io.err(style.error(formatError(err)));
      }
    } finally {
      answering = null;
    }
    prompt();
  }
  rl.close();
  return failed;
}
