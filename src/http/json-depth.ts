/**
 * Nesting depth of a JSON text, measured on the raw bytes before anything parses it. V8's
 * JSON.parse copes with any depth, but what walks the parsed value afterwards recurses
 * (JSON.stringify in validation messages, ajv, schema-to-grammar code): a body nested 10,000
 * arrays deep overflowed the stack there and came back 500. A scan of the bytes is linear, needs
 * no allocation, and refuses such a body before it is even parsed.
 */

/** Deepest nesting of arrays and objects a request body may have. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * True when `bytes` (UTF-8 JSON, valid or not) opens more than `max` arrays/objects inside each
 * other. Brackets inside strings do not count. Works on bytes because the six ASCII characters it
 * looks at never occur inside a multi-byte UTF-8 sequence.
 */
export function jsonDepthExceeds(bytes: Uint8Array, max: number): boolean {
  // Fewer bytes than max+1 cannot hold max+1 opening brackets.
  if (bytes.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}
