/**
 * Reads tool calls out of a model's output, in the formats models are trained to emit:
 *   - `hermes` (also InferFlux's own, the preamble's): `<tool_call>{"name", "arguments"}</tool_call>`, one block per call;
 *   - `mistral`: `[TOOL_CALLS]` then a JSON array of `{"name", "arguments"}`;
 *   - `llama3`: the whole answer is one JSON object `{"name", "parameters"}` (optionally after `<|python_tag|>`).
 * A call's arguments come back as JSON text, as OpenAI sends them.
 */

export type ToolCallFormat = 'hermes' | 'mistral' | 'llama3';

export interface ParsedToolCalls {
  format: ToolCallFormat;
  calls: { name: string; arguments: string }[];
  /** Text before the first call (Hermes models may think aloud first); '' for the others. */
  content: string;
}

const HERMES_OPEN = '<tool_call>';
const HERMES_CLOSE = '</tool_call>';
const MISTRAL = '[TOOL_CALLS]';
const PYTHON_TAG = '<|python_tag|>';

/** The tool names the request declared: a parsed call must name one of them. */
export function parseToolCalls(text: string, known: ReadonlySet<string>): ParsedToolCalls | null {
  const trimmed = text.trim();
  const open = text.indexOf(HERMES_OPEN);
  if (open >= 0) {
    const calls: { name: string; arguments: string }[] = [];
    let at = open;
    while (at >= 0 && at < text.length) {
      const start = text.indexOf(HERMES_OPEN, at);
      if (start < 0) break;
      const end = text.indexOf(HERMES_CLOSE, start);
      if (end < 0) return null;
      const call = callOf(parseJson(text.slice(start + HERMES_OPEN.length, end)), known);
      if (!call) return null;
      calls.push(call);
      at = end + HERMES_CLOSE.length;
    }
    if (text.slice(at).trim() !== '') return null;
    return calls.length > 0 ? { format: 'hermes', calls, content: text.slice(0, open).trim() } : null;
  }
  if (trimmed.startsWith(MISTRAL)) {
    const list = parseJson(trimmed.slice(MISTRAL.length));
    if (!Array.isArray(list) || list.length === 0) return null;
    const calls = list.map((c) => callOf(c, known));
    return calls.every((c) => c !== null) ? { format: 'mistral', calls: calls as { name: string; arguments: string }[], content: '' } : null;
  }
  const body = trimmed.startsWith(PYTHON_TAG) ? trimmed.slice(PYTHON_TAG.length) : trimmed;
  if (body.startsWith('{')) {
    const call = callOf(parseJson(body), known);
    return call ? { format: 'llama3', calls: [call], content: '' } : null;
  }
  return null;
}

/**
 * Whether text produced so far may still turn out to be a tool call (so a stream must hold it
 * back): it is a start of, or starts with, one of the formats' openings.
 */
export function mayBeToolCall(text: string): boolean {
  const t = text.trimStart();
  if (t === '') return true;
  for (const marker of [HERMES_OPEN, MISTRAL, PYTHON_TAG, '{']) {
    if (marker.startsWith(t) || t.startsWith(marker)) return true;
  }
  return false;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text.trim());
  } catch {
    return undefined;
  }
}

function callOf(v: unknown, known: ReadonlySet<string>): { name: string; arguments: string } | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || !known.has(o.name)) return null;
  const args = o.arguments ?? o.parameters ?? {};
  if (typeof args === 'string') return parseJson(args) === undefined ? null : { name: o.name, arguments: args };
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return null;
  return { name: o.name, arguments: JSON.stringify(args) };
}
