/**
 * A TokenSink stage for requests with tools: reads each choice's output for tool calls
 * (generation/tools/parse-tool-calls.ts) and hands them on as calls instead of text.
 *
 * Streaming: with `tool_choice: "auto"` text is held back only while it may still become a call
 * (a start of `<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>` or a JSON object); once it cannot,
 * it streams as usual. A constrained choice (`required`, a named function) is all calls: it is
 * held to its end. At a choice's end held text is parsed; calls go to `onToolCalls`, anything
 * else is released as text.
 */
import { randomUUID } from 'node:crypto';
import type { TokenLogprob, TokenSink, ToolCall } from '../../generation/contract.js';
import { mayBeToolCall, parseToolCalls } from '../../generation/tools/parse-tool-calls.js';
import type { Metrics } from '../../metrics.js';

export interface ToolCallReceiver {
  /** A choice's calls, with the text the model wrote before them ('' for none). */
  onToolCalls(choice: number, calls: ToolCall[], content: string): void;
}

export interface ToolCallOptions {
  /** Functions the request declared. */
  names: ReadonlySet<string>;
  /** The output is constrained to calls (`required` or a named function). */
  constrained: boolean;
  /** More than one call per answer (`parallel_tool_calls`). */
  parallel: boolean;
}

export function toolCallSink(inner: TokenSink & ToolCallReceiver, opts: ToolCallOptions, choices: number, metrics: Metrics): TokenSink {
  const held: string[] = Array.from({ length: choices }, () => '');
  const heldLogprobs: TokenLogprob[][] = Array.from({ length: choices }, () => []);
  const passing: boolean[] = Array.from({ length: choices }, () => false);
  const release = (choice: number) => {
    const text = held[choice]!;
    const lps = heldLogprobs[choice]!;
    held[choice] = '';
    heldLogprobs[choice] = [];
    if (text !== '' || lps.length > 0) inner.onText(choice, text, lps.length > 0 ? lps : undefined);
  };
  return {
    onStart: (meta) => inner.onStart(meta),
    onText(choice, text, logprobs) {
      if (passing[choice]) return inner.onText(choice, text, logprobs);
      held[choice] += text;
      if (logprobs) heldLogprobs[choice]!.push(...logprobs);
      if (!opts.constrained && !mayBeToolCall(held[choice]!)) {
        passing[choice] = true;
        release(choice);
      }
    },
    onChoiceEnd(choice, reason, completionTokens) {
      if (!passing[choice]) {
        const parsed = parseToolCalls(held[choice]!, opts.names);
        if (parsed) {
          const calls = (opts.parallel ? parsed.calls : parsed.calls.slice(0, 1)).map((c) => ({ id: `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`, ...c }));
          metrics.toolCallsParsed.inc({ format: parsed.format }, calls.length);
          held[choice] = '';
          heldLogprobs[choice] = [];
          inner.onToolCalls(choice, calls, parsed.content);
        } else release(choice);
      }
      inner.onChoiceEnd(choice, reason, completionTokens);
    },
    onEnd: (usage) => inner.onEnd(usage),
    onError: (err) => inner.onError(err),
  };
}
