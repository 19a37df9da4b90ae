/**
 * Ollama's Modelfile text, both ways: `parseModelfile` turns one into the fields of
 * `POST /api/create` (what `inferctl create -f Modelfile` sends), `renderModelfile` writes a
 * preset back as one (`/api/show`'s `modelfile`) and `renderParameters` its PARAMETER lines
 * (`/api/show`'s `parameters`).
 *
 *   # comment
 *   FROM base-model
 *   SYSTEM """multi-line text"""        (or "quoted", or the rest of the line)
 *   PARAMETER temperature 0.7           (repeatable; `stop` collects into a list)
 *   MESSAGE user How do I ...?          (repeatable)
 *   LICENSE """..."""                   (repeatable)
 *   TEMPLATE / ADAPTER                  (parsed, so the server can refuse them by name)
 */
import type { ModelPreset, PresetMessage } from './preset-store.js';

export interface ModelfileFields {
  from?: string;
  system?: string;
  template?: string;
  parameters?: Record<string, string | number | string[]>;
  messages?: PresetMessage[];
  license?: string[];
  adapters?: Record<string, string>;
}

export class ModelfileError extends Error {}

const INSTRUCTIONS = new Set(['from', 'system', 'template', 'parameter', 'message', 'license', 'adapter']);
/** PARAMETERs whose value is text; every other value must be a number. */
const TEXT_PARAMETERS = new Set(['stop']);

/** The argument starting at `text[i]`: `"""..."""`, `"..."` (JSON escapes) or the rest of the line. Returns it and where parsing resumes. */
function readArgument(text: string, i: number, line: number): { value: string; next: number } {
  if (text.startsWith('"""', i)) {
    const end = text.indexOf('"""', i + 3);
    if (end < 0) throw new ModelfileError(`line ${line}: unterminated """ string`);
    return { value: text.slice(i + 3, end), next: end + 3 };
  }
  const eol = text.indexOf('\n', i);
  const rest = (eol < 0 ? text.slice(i) : text.slice(i, eol)).replace(/\r$/, '');
  const next = eol < 0 ? text.length : eol + 1;
  const trimmed = rest.trim();
  if (trimmed.startsWith('"') && trimmed.endsWith('"') && trimmed.length >= 2) {
    try {
      return { value: JSON.parse(trimmed) as string, next };
    } catch {
      throw new ModelfileError(`line ${line}: malformed quoted string ${trimmed}`);
    }
  }
  return { value: trimmed, next };
}

function lineAt(text: string, i: number): number {
  let n = 1;
  for (let k = 0; k < i; k++) if (text.charCodeAt(k) === 10) n++;
  return n;
}

export function parseModelfile(text: string): ModelfileFields {
  const out: ModelfileFields = {};
  let i = 0;
  while (i < text.length) {
    // Skip blank space and comments between instructions.
    const ws = /^[ \t\r\n]+/.exec(text.slice(i, i + 4096));
    if (ws) {
      i += ws[0].length;
      continue;
    }
    const line = lineAt(text, i);
    if (text[i] === '#') {
      const eol = text.indexOf('\n', i);
      i = eol < 0 ? text.length : eol + 1;
      continue;
    }
    const word = /^([A-Za-z]+)([ \t]*)/.exec(text.slice(i, i + 64));
    const instruction = word?.[1]?.toLowerCase();
    if (!word || !instruction || !INSTRUCTIONS.has(instruction)) {
      const eol = text.indexOf('\n', i);
      throw new ModelfileError(`line ${line}: unknown instruction ${JSON.stringify((eol < 0 ? text.slice(i) : text.slice(i, eol)).split(/\s/)[0])}; expected FROM, SYSTEM, TEMPLATE, PARAMETER, MESSAGE, LICENSE or ADAPTER`);
    }
    if (word[2] === '') throw new ModelfileError(`line ${line}: ${word[1]} needs an argument`);
    i += word[0].length;
    if (instruction === 'parameter' || instruction === 'message') {
      const key = /^([A-Za-z_]+)[ \t]+/.exec(text.slice(i, i + 128));
      if (!key) throw new ModelfileError(`line ${line}: ${instruction.toUpperCase()} needs a ${instruction === 'parameter' ? 'name' : 'role'} and a value`);
      i += key[0].length;
      const { value, next } = readArgument(text, i, line);
      i = next;
      if (instruction === 'message') {
        const role = key[1]!.toLowerCase();
        if (role !== 'system' && role !== 'user' && role !== 'assistant') throw new ModelfileError(`line ${line}: MESSAGE role must be system, user or assistant, not ${key[1]}`);
        (out.messages ??= []).push({ role, content: value });
        continue;
      }
      const name = key[1]!.toLowerCase();
      const params = (out.parameters ??= {});
      if (TEXT_PARAMETERS.has(name)) {
        const list = (params[name] as string[] | undefined) ?? [];
        list.push(value);
        params[name] = list;
      } else {
        const n = Number(value);
        if (value === '' || !Number.isFinite(n)) throw new ModelfileError(`line ${line}: PARAMETER ${name} needs a number, got ${JSON.stringify(value)}`);
        params[name] = n;
      }
      continue;
    }
    const { value, next } = readArgument(text, i, line);
    i = next;
    switch (instruction) {
      case 'from':
        out.from = value;
        break;
      case 'system':
        out.system = value;
        break;
      case 'template':
        out.template = value;
        break;
      case 'license':
        (out.license ??= []).push(value);
        break;
      case 'adapter':
        (out.adapters ??= {})[value] = '';
        break;
    }
  }
  if (out.from === undefined || out.from === '') throw new ModelfileError('a Modelfile needs a FROM line');
  return out;
}

/** Text as a Modelfile argument: `"""..."""` unless it holds `"""` itself, then a JSON string. */
function quoted(text: string): string {
  return text.includes('"""') ? JSON.stringify(text) : `"""${text}"""`;
}

/** Ollama's `parameters` text: one `name value` line per value, names padded, strings quoted. */
export function renderParameters(p: ModelPreset['parameters']): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(p)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name.padEnd(30)} ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  }
  return lines.join('\n');
}

export function renderModelfile(p: ModelPreset): string {
  const lines = [`# Modelfile of ${p.name} (InferFlux model preset)`, `FROM ${p.from}`];
  if (p.system !== null) lines.push(`SYSTEM ${quoted(p.system)}`);
  for (const [name, value] of Object.entries(p.parameters)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`PARAMETER ${name} ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  }
  for (const m of p.messages) lines.push(`MESSAGE ${m.role} ${quoted(m.content)}`);
  for (const l of p.license) lines.push(`LICENSE ${quoted(l)}`);
  return lines.join('\n') + '\n';
}
