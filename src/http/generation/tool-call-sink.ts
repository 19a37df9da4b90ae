/**
 * A TokenSink stage for requests with tools: reads each choice's output for tool calls and hands
 * them on as calls instead of text, as they are generated.
 *
 * Hermes blocks (`<tool_call>{"name", "arguments"}</tool_call>`: InferFlux's format, and all a
 * constrained choice can write) are read while they grow (generation/tools/hermes-call-scanner.ts):
 * a call starts (`onToolCallStart`, with its id) once its name is complete and names a declared
 * function, then its arguments follow in pieces as tokens arrive (`onToolCallArguments`). Streamed
 * and non-streamed responses are both built from these calls, so they agree exactly.
 *
 * With `tool_choice: "auto"` text is held back only while it may still become a call (a start of
 * `<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>` or a JSON object); once it cannot, it streams as
 * usual. Formats that cannot be read before they end (Mistral's array, Llama 3's bare JSON) are
 * parsed at the choice's end and their calls sent whole; held text that is no call is released.
 * Once a Hermes call started, the rest of the choice belongs to its calls: text after them that
 * forms no further call is dropped (a constrained choice never has any).
 */
import { randomUUID } from 'node:crypto';
import type { TokenLogprob, TokenSink } from '../../generation/contract.js';
import { scanHermesCalls } from '../../generation/tools/hermes-call-scanner.js';
import { mayBeToolCall, parseToolCalls } from '../../generation/tools/parse-tool-calls.js';
import type { Metrics } from '../../metrics.js';

export interface ToolCallReceiver {
  /** Call `index` of a choice begins: its id and function name (its arguments follow). */
  onToolCallStart(choice: number, index: number, id: string, name: string): void;
  /** More of call `index`'s arguments (JSON text; the pieces concatenate). */
  onToolCallArguments(choice: number, index: number, piece: string): void;
}

export interface ToolCallOptions {
  /** Functions the request declared. */
  names: ReadonlySet<string>;
  /** The output is constrained to calls (`required` or a named function). */
  constrained: boolean;
  /** More than one call per answer (`parallel_tool_calls`). */
  parallel: boolean;
}

/** One call read from a choice, as `server.log_tool_calls` logs it (no argument text). */
export interface ToolCallRecord {
  choice: number;
  index: number;
  id: string;
  name: string;
  format: string;
  /** Length of the arguments' JSON text. */
  argumentChars: number;
}

const callId = (): string => `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;

interface ChoiceState {
  held: string;
  heldLogprobs: TokenLogprob[];
  passing: boolean;
  /** Characters of each started call's arguments already handed on. */
  sent: number[];
  /** Each started call's id and name. */
  calls: { id: string; name: string }[];
}

export function toolCallSink(
  inner: TokenSink & ToolCallReceiver,
  opts: ToolCallOptions,
  choices: number,
  metrics: Metrics,
  /** Told of every call once its choice ended (`server.log_tool_calls`). */
  onCall?: (call: ToolCallRecord) => void,
): TokenSink {
  const st: ChoiceState[] = Array.from({ length: choices }, () => ({ held: '', heldLogprobs: [], passing: false, sent: [], calls: [] }));
  const release = (choice: number) => {
    const s = st[choice]!;
    const { held: text, heldLogprobs: lps } = s;
    s.held = '';
    s.heldLogprobs = [];
    if (text !== '' || lps.length > 0) inner.onText(choice, text, lps.length > 0 ? lps : undefined);
  };

  /** Starts calls whose names are complete and sends their new argument text. */
  const advanceHermes = (choice: number, final: boolean) => {
    const s = st[choice]!;
    const scanned = scanHermesCalls(s.held);
    if (!scanned) return;
    for (let k = 0; k < scanned.calls.length; k++) {
      const call = scanned.calls[k]!;
      if (k === s.sent.length) {
        if (call.name === null || !opts.names.has(call.name) || (k > 0 && !opts.parallel)) return;
        // The model's words before its first call (Hermes models may think aloud) go out as text.
        const content = scanned.content.trim();
        if (k === 0 && content !== '') inner.onText(choice, content);
        s.sent.push(0);
        const id = callId();
        s.calls.push({ id, name: call.name });
        inner.onToolCallStart(choice, k, id, call.name);
      }
      // A call without arguments takes none: `{}`, as parse-tool-calls.ts reads it.
      const args = final && !call.argumentsStarted ? '{}' : call.arguments;
      if (args.length > s.sent[k]!) {
        inner.onToolCallArguments(choice, k, args.slice(s.sent[k]!));
        s.sent[k] = args.length;
      }
    }
  };

  return {
    onStart: (meta) => inner.onStart(meta),
    onText(choice, text, logprobs) {
      const s = st[choice]!;
      if (s.passing) return inner.onText(choice, text, logprobs);
      s.held += text;
      if (logprobs) s.heldLogprobs.push(...logprobs);
      if (!opts.constrained && s.sent.length === 0 && !mayBeToolCall(s.held)) {
        s.passing = true;
        return release(choice);
      }
      advanceHermes(choice, false);
    },
    onChoiceEnd(choice, reason, completionTokens) {
      const s = st[choice]!;
      if (!s.passing) {
        advanceHermes(choice, true);
        if (s.sent.length > 0) {
          metrics.toolCallsParsed.inc({ format: 'hermes' }, s.sent.length);
          s.calls.forEach((c, index) => onCall?.({ choice, index, id: c.id, name: c.name, format: 'hermes', argumentChars: s.sent[index]! }));
        } else {
          const parsed = parseToolCalls(s.held, opts.names);
          if (parsed) {
            const calls = opts.parallel ? parsed.calls : parsed.calls.slice(0, 1);
            metrics.toolCallsParsed.inc({ format: parsed.format }, calls.length);
            if (parsed.content !== '') inner.onText(choice, parsed.content);
            calls.forEach((c, k) => {
              const id = callId();
              inner.onToolCallStart(choice, k, id, c.name);
              inner.onToolCallArguments(choice, k, c.arguments);
              onCall?.({ choice, index: k, id, name: c.name, format: parsed.format, argumentChars: c.arguments.length });
            });
          } else release(choice);
        }
        s.held = '';
        s.heldLogprobs = [];
      }
      inner.onChoiceEnd(choice, reason, completionTokens);
    },
    onEnd: (usage) => inner.onEnd(usage),
    onError: (err) => inner.onError(err),
  };
}
