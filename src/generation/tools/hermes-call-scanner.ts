/**
 * Reads Hermes-format tool calls (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`,
 * InferFlux's own format and the constrained grammar's) out of output that is still being
 * generated, so a stream can send each call's name as soon as it is complete and its arguments
 * as they grow. Re-scans the whole text on each call: outputs are bounded by `max_tokens` and the
 * scan is linear, which is simpler than keeping a parser's state between pieces and cheap enough.
 *
 * `arguments` is the model's own JSON text (what OpenAI sends), not a re-serialisation: an
 * object or array value streams while it grows (every character inside it belongs to it); a
 * string or other value is known only once complete (a JSON string's text is its decoded value,
 * as parse-tool-calls.ts reads it).
 */

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

export interface ScannedCall {
  /** The function name once its JSON string is complete, else null. */
  name: string | null;
  /** The arguments' text that is certain so far ('' before they start). */
  arguments: string;
  /** The call has an `arguments` (or `parameters`) member, complete or not. */
  argumentsStarted: boolean;
  /** The arguments value is complete. */
  argumentsDone: boolean;
}

export interface ScannedCalls {
  /** Text before the first `<tool_call>`. */
  content: string;
  /** Calls in order; the last one may be incomplete. */
  calls: ScannedCall[];
}

/** Null until the text holds a `<tool_call>` tag. */
export function scanHermesCalls(text: string): ScannedCalls | null {
  let at = text.indexOf(OPEN);
  if (at < 0) return null;
  const out: ScannedCalls = { content: text.slice(0, at), calls: [] };
  while (at >= 0) {
    const call: ScannedCall = { name: null, arguments: '', argumentsStarted: false, argumentsDone: false };
    out.calls.push(call);
    const end = scanCallObject(text, skipWs(text, at + OPEN.length), call);
    if (end < 0) break;
    const close = skipWs(text, end);
    if (!text.startsWith(CLOSE, close)) break;
    at = text.indexOf(OPEN, close + CLOSE.length);
  }
  return out;
}

/** Fills `call` from the object at `i`; returns the index after it, or -1 if incomplete or malformed. */
function scanCallObject(t: string, i: number, call: ScannedCall): number {
  if (t[i] !== '{') return -1;
  i++;
  for (;;) {
    i = skipWs(t, i);
    if (i >= t.length) return -1;
    if (t[i] === '}') return i + 1;
    if (t[i] === ',') {
      i++;
      continue;
    }
    if (t[i] !== '"') return -1;
    const keyEnd = stringEnd(t, i);
    if (keyEnd < 0) return -1;
    const key = parseJson(t.slice(i, keyEnd));
    i = skipWs(t, keyEnd);
    if (t[i] !== ':') return -1;
    i = skipWs(t, i + 1);
    if (i >= t.length) return -1;
    const end = valueEnd(t, i);
    if ((key === 'arguments' || key === 'parameters') && !call.argumentsStarted) {
      call.argumentsStarted = true;
      const grows = t[i] === '{' || t[i] === '[';
      if (end < 0) {
        if (grows) call.arguments = t.slice(i);
        return -1;
      }
      const raw = t.slice(i, end);
      const decoded = t[i] === '"' ? parseJson(raw) : raw;
      call.arguments = typeof decoded === 'string' ? decoded : raw;
      call.argumentsDone = true;
    } else if (end < 0) {
      return -1;
    } else if (key === 'name') {
      const name = parseJson(t.slice(i, end));
      if (typeof name === 'string') call.name = name;
    }
    i = end;
  }
}

function skipWs(t: string, i: number): number {
  while (i < t.length && (t[i] === ' ' || t[i] === '\n' || t[i] === '\t' || t[i] === '\r')) i++;
  return i;
}

/** Index after the JSON string starting at `i` (a quote), or -1 if it is not closed yet. */
function stringEnd(t: string, i: number): number {
  for (let j = i + 1; j < t.length; j++) {
    if (t[j] === '\\') j++;
    else if (t[j] === '"') return j + 1;
  }
  return -1;
}

/** Index after the JSON value starting at `i`, or -1 if it may still go on. */
function valueEnd(t: string, i: number): number {
  const c = t[i];
  if (c === '"') return stringEnd(t, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < t.length; j++) {
      const ch = t[j];
      if (ch === '"') {
        const e = stringEnd(t, j);
        if (e < 0) return -1;
        j = e - 1;
      } else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  // A number, true, false or null: it ends at the first delimiter.
  let j = i;
  while (j < t.length && !',}] \n\r\t'.includes(t[j]!)) j++;
  return j < t.length ? j : -1;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
