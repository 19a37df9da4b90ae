/**
 * InferFlux's JSON Schema -> GBNF compiler. node-llama-cpp's converter silently drops
 * `required`, `anyOf`/`allOf`, `pattern` and bounds (notes §4); this one either honours a keyword
 * or refuses the schema with a 400 that names it. Learned from llama.cpp's
 * common/json-schema-to-grammar.cpp; written anew.
 *
 * What the grammar generates is always a subset of what the schema accepts (the output is then
 * checked with ajv, validate-output.ts), and, where the schema is bounded, it ends by itself:
 *   - Output is JSON with bounded whitespace: after `{ [ , :` and before `} ]` at most one run of
 *     one space, or a newline and up to 8 spaces. Nothing before or after the root value, so the
 *     grammar is complete at the closing character and the model can only end there.
 *   - Objects: required properties first, then optional ones, each group in `properties` order
 *     (llama.cpp's order); optional ones may be left out. `additionalProperties`: absent or false
 *     means no extra keys are generated, in strict and non-strict mode alike (OpenAI's strict mode
 *     demands false anyway; an absent one still validates since no extras are produced); true or a
 *     schema allows extra keys of 1-32 characters `[A-Za-z0-9_-]`, never a known property's name.
 *     An object schema without `properties` and `required` is any object (extra keys allowed).
 *   - `allOf` is merged into one schema (properties and required united; an `additionalProperties:
 *     false` branch limits the properties to its own; other keywords must agree). `anyOf` and
 *     `oneOf` are alternatives (oneOf branches that overlap can produce a value matching two; the
 *     ajv check catches it).
 *   - `$ref` to `#` (the root), `#/$defs/...` or `#/definitions/...`; recursion is unrolled to MAX_REF_DEPTH
 *     nested references, past which the reference is impossible and optional parts leading to it
 *     are dropped.
 *   - Numbers and integers: number-range.ts (bounded digits, no exponents, exact bounds).
 *   - Strings: `minLength`/`maxLength` (a maxLength above MAX_REPEAT is lowered to it), `pattern`
 *     (pattern.ts), `format` (formats.ts); `pattern` or `format` together with a length is refused.
 *   - Arrays: `items`, `prefixItems`, `minItems`, `maxItems` (same MAX_REPEAT rule).
 *   - `enum`/`const`: the values' compact JSON; only `type` may stand beside them.
 *   - No schema, `true` or `{}`: any JSON value, nested at most MAX_ANY_DEPTH levels.
 * Limits are checked before any work: size, depth and keywords of the schema (limits.ts), then the
 * rule count while compiling.
 */
import { InferFluxError } from '../../errors.js';
import { STRING_UNIVERSE, gbnfLiteral, jsonStringCharGbnf } from './char-set.js';
import { formatGbnf, isSupportedFormat } from './formats.js';
import { GbnfBuilder } from './gbnf-builder.js';
import { GRAMMAR_LIMITS, checkSchemaShape, type JsonObject, type SchemaLimits } from './schema-check.js';
import { type Bound, integerGrammar, numberGrammar } from './number-range.js';
import { PatternError, patternToGbnf } from './pattern.js';

export const MAX_REF_DEPTH = 8;
export const MAX_ANY_DEPTH = 4;
export const MAX_REPEAT = 1000;
const EXTRA_KEY_MAX = 32;

export interface CompileOptions {
  /** Request field the schema came from, named in every error. */
  param: string;
  limits?: Partial<SchemaLimits>;
}

export interface CompiledGrammar {
  /** GBNF text whose root rule is `root`. */
  gbnf: string;
  /** Named rules besides root. */
  rules: number;
}

/** Compile a JSON Schema to GBNF. Throws InferFluxError('invalid_request') naming `param`. */
export function compileJsonSchema(schema: unknown, opts: CompileOptions): CompiledGrammar {
  const limits = { ...GRAMMAR_LIMITS, ...opts.limits };
  checkSchemaShape(schema, limits, opts.param);
  return new Compiler(schema as JsonObject | boolean, limits, opts.param).compile();
}

/** The grammar for `response_format: {"type": "json_object"}`: any JSON object. */
export function compileAnyJsonObject(opts: CompileOptions): CompiledGrammar {
  return compileJsonSchema({ type: 'object', additionalProperties: true }, opts);
}

type Schema = JsonObject | boolean;

const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'] as const;
type TypeName = (typeof TYPES)[number];

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly']);

class Compiler {
  private readonly b: GbnfBuilder;
  private readonly refs = new Map<string, string | null>();
  private readonly ws: string;

  constructor(
    private readonly root: Schema,
    private readonly limits: SchemaLimits,
    private readonly param: string,
  ) {
    this.b = new GbnfBuilder(limits.maxRules, param);
    this.ws = this.b.rule('ws', '("" | " " | "\\n" " "{0,8})');
  }

  compile(): CompiledGrammar {
    const body = this.value(this.root, '', 0);
    if (body === null) this.fail('The schema allows no value that InferFlux can generate.');
    const gbnf = this.b.render(body);
    if (gbnf.length > this.limits.maxGrammarBytes) {
      this.fail(`The schema compiles to a grammar larger than ${this.limits.maxGrammarBytes} bytes; simplify it.`);
    }
    return { gbnf, rules: this.b.size };
  }

  private fail(message: string): never {
    throw new InferFluxError('invalid_request', message, { param: this.param });
  }

  /** GBNF for a value matching `schema`; null when no value can be generated. */
  private value(schema: Schema, path: string, level: number): string | null {
    if (schema === true) return this.anyValue(0);
    if (schema === false) return null;
    if (typeof schema.$ref === 'string') {
      const rest = this.withoutKeys(schema, ['$ref', '$defs', 'definitions']);
      if (this.constraintKeys(rest).length === 0) return this.ref(schema.$ref, path, level);
      return this.value({ allOf: [{ $ref: schema.$ref }, rest] }, path, level);
    }
    if (Array.isArray(schema.allOf)) {
      const merged = this.mergeAll([this.withoutKeys(schema, ['allOf']), ...(schema.allOf as Schema[])], path);
      return merged === false ? null : this.value(merged, path, level);
    }
    const branches = (Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : null) as Schema[] | null;
    if (branches) {
      const rest = this.withoutKeys(schema, ['anyOf', 'oneOf']);
      if (Array.isArray(schema.anyOf) && Array.isArray(schema.oneOf)) this.fail(`anyOf together with oneOf at ${path || '/'} is not supported.`);
      const hasRest = this.constraintKeys(rest).length > 0;
      const options: string[] = [];
      branches.forEach((branch, i) => {
        const g = this.value(hasRest ? { allOf: [rest, branch] } : branch, `${path}/${Array.isArray(schema.anyOf) ? 'anyOf' : 'oneOf'}/${i}`, level);
        if (g !== null && !options.includes(g)) options.push(g);
      });
      return this.alt(options);
    }
    if ('enum' in schema || 'const' in schema) return this.enumValue(schema, path);
    if (this.constraintKeys(schema).length === 0) return this.anyValue(0);
    const types = this.types(schema);
    const options: string[] = [];
    for (const t of types) {
      const g = this.typed(t, schema, path, level);
      if (g !== null) options.push(g);
    }
    return this.alt(options);
  }

  private withoutKeys(schema: JsonObject, keys: string[]): JsonObject {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(schema)) if (!keys.includes(k)) out[k] = v;
    return out;
  }

  private constraintKeys(schema: JsonObject): string[] {
    return Object.keys(schema).filter((k) => !ANNOTATIONS.has(k) && k !== '$defs' && k !== 'definitions');
  }

  private alt(options: string[]): string | null {
    if (options.length === 0) return null;
    return options.length === 1 ? options[0]! : `(${options.join(' | ')})`;
  }

  private ref(ref: string, path: string, level: number): string | null {
    if (level >= MAX_REF_DEPTH) return null;
    const key = `${ref}@${level}`;
    if (this.refs.has(key)) return this.refs.get(key)!;
    const target = this.resolve(ref, path);
    const body = this.value(target, ref.slice(1), level + 1);
    const name = body === null ? null : this.b.rule(`ref-${ref.split('/').pop() || 'root'}-${level}`, body);
    this.refs.set(key, name);
    return name;
  }

  private resolve(ref: string, path: string): Schema {
    if (ref === '#') return this.root;
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    if (!m) this.fail(`$ref '${ref}' at ${path || '/'} is not supported; only '#', '#/$defs/name' and '#/definitions/name' are.`);
    const name = m[2]!.replace(/~1/g, '/').replace(/~0/g, '~');
    const defs = typeof this.root === 'object' ? (this.root[m[1]!] as JsonObject | undefined) : undefined;
    const target = defs && Object.prototype.hasOwnProperty.call(defs, name) ? (defs[name] as Schema) : undefined;
    if (target === undefined) this.fail(`$ref '${ref}' at ${path || '/'} points to nothing.`);
    return target;
  }

  /** Merge allOf branches (refs resolved) into one schema; false when they contradict. */
  private mergeAll(parts: Schema[], path: string): Schema {
    const out: JsonObject = {};
    const props: Record<string, Schema> = {};
    const required = new Set<string>();
    const closedTo: Set<string>[] = [];
    let extra: Schema | undefined;
    const queue = [...parts];
    let guard = 0;
    while (queue.length > 0) {
      // A $ref cycle inside allOf would never end; 256 merged parts is far beyond real schemas.
      if (++guard > 256) this.fail(`allOf at ${path || '/'} expands too far (a $ref cycle?).`);
      const part = queue.shift()!;
      if (part === true) continue;
      if (part === false) return false;
      if (typeof part.$ref === 'string') {
        queue.push(this.resolve(part.$ref, path), this.withoutKeys(part, ['$ref']));
        continue;
      }
      for (const [k, v] of Object.entries(part)) {
        if (ANNOTATIONS.has(k) || k === '$defs' || k === 'definitions') continue;
        if (k === 'allOf') {
          queue.push(...(v as Schema[]));
        } else if (k === 'properties') {
          for (const [name, s] of Object.entries(v as Record<string, Schema>)) {
            props[name] = name in props ? { allOf: [props[name]!, s] } : s;
          }
        } else if (k === 'required') {
          for (const r of v as string[]) required.add(r);
        } else if (k === 'additionalProperties') {
          if (v === false) closedTo.push(new Set(Object.keys((part.properties as JsonObject | undefined) ?? {})));
          else if (extra === undefined) extra = v as Schema;
          else if (JSON.stringify(extra) !== JSON.stringify(v)) extra = { allOf: [extra, v as Schema] };
        } else if (k === 'type') {
          const mine = Array.isArray(v) ? (v as string[]) : [v as string];
          if (out.type === undefined) out.type = mine;
          else {
            const theirs = out.type as string[];
            out.type = theirs.filter((t) => mine.includes(t) || (t === 'integer' && mine.includes('number'))).concat(
              mine.filter((t) => t === 'integer' && theirs.includes('number') && !theirs.includes('integer')),
            );
          }
        } else if (k in out && JSON.stringify(out[k]) !== JSON.stringify(v)) {
          this.fail(`allOf at ${path || '/'} has two different '${k}' values; merge them into one schema.`);
        } else out[k] = v;
      }
    }
    if (Array.isArray(out.type) && out.type.length === 0) return false;
    if (Object.keys(props).length > 0 || closedTo.length > 0) {
      let names = Object.keys(props);
      for (const allowed of closedTo) names = names.filter((n) => allowed.has(n));
      for (const r of required) if (closedTo.some((allowed) => !allowed.has(r))) return false;
      const kept: Record<string, Schema> = {};
      for (const n of names) kept[n] = props[n]!;
      out.properties = kept;
    }
    if (required.size > 0) out.required = [...required];
    if (closedTo.length > 0) out.additionalProperties = false;
    else if (extra !== undefined) out.additionalProperties = extra;
    return out;
  }

  private enumValue(schema: JsonObject, path: string): string | null {
    const extra = this.constraintKeys(schema).filter((k) => k !== 'enum' && k !== 'const' && k !== 'type');
    if (extra.length > 0) this.fail(`'${extra[0]}' beside enum/const at ${path || '/'} is not supported; list only the allowed values.`);
    let values: unknown[] = 'const' in schema ? [schema.const] : (schema.enum as unknown[]);
    if ('const' in schema && 'enum' in schema) {
      const c = JSON.stringify(schema.const);
      values = (schema.enum as unknown[]).some((v) => JSON.stringify(v) === c) ? [schema.const] : [];
    }
    if ('type' in schema) {
      const types = this.types(schema);
      values = values.filter((v) => types.includes(jsonType(v)) || (jsonType(v) === 'integer' && types.includes('number')));
    }
    const literals = [...new Set(values.map((v) => gbnfLiteral(JSON.stringify(v))))];
    return this.alt(literals);
  }

  /** The types a schema allows: its `type`, else those its keywords imply, else all. */
  private types(schema: JsonObject): TypeName[] {
    if (schema.type !== undefined) return (Array.isArray(schema.type) ? schema.type : [schema.type]) as TypeName[];
    const implied = new Set<TypeName>();
    const has = (...ks: string[]): boolean => ks.some((k) => k in schema);
    if (has('properties', 'required', 'additionalProperties')) implied.add('object');
    if (has('items', 'prefixItems', 'minItems', 'maxItems')) implied.add('array');
    if (has('minLength', 'maxLength', 'pattern', 'format')) implied.add('string');
    if (has('minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum')) implied.add('number');
    return implied.size > 0 ? [...implied] : [...TYPES];
  }

  private typed(t: TypeName, schema: JsonObject, path: string, level: number): string | null {
    switch (t) {
      case 'null':
        return '"null"';
      case 'boolean':
        return '("true" | "false")';
      case 'integer':
      case 'number': {
        const min = bound(schema.minimum, schema.exclusiveMinimum, 'min');
        const max = bound(schema.maximum, schema.exclusiveMaximum, 'max');
        const g = t === 'integer' ? integerGrammar(min, max) : numberGrammar(min, max);
        return g === null ? null : this.b.rule(t, g);
      }
      case 'string':
        return this.string(schema, path);
      case 'object':
        return this.object(schema, path, level);
      case 'array':
        return this.array(schema, path, level);
    }
  }

  private string(schema: JsonObject, path: string): string | null {
    const hasLength = 'minLength' in schema || 'maxLength' in schema;
    if (typeof schema.format === 'string') {
      if (!isSupportedFormat(schema.format)) {
        this.fail(`format '${schema.format}' at ${path || '/'} is not supported (supported: date, date-time, time, uuid, email, uri).`);
      }
      if (hasLength || 'pattern' in schema) this.fail(`format together with pattern, minLength or maxLength at ${path || '/'} is not supported.`);
      return this.b.rule(`string-${schema.format}`, `"\\"" ${formatGbnf(schema.format, this.b)} "\\""`);
    }
    if (typeof schema.pattern === 'string') {
      if (hasLength) this.fail(`pattern together with minLength or maxLength at ${path || '/'} is not supported; put the length in the pattern.`);
      let content: string;
      try {
        content = patternToGbnf(schema.pattern, this.b);
      } catch (err) {
        if (err instanceof PatternError) this.fail(`pattern at ${path || '/'} is not supported: ${err.message}.`);
        throw err;
      }
      return this.b.rule('string-pattern', `"\\"" ${content} "\\""`);
    }
    const min = (schema.minLength as number | undefined) ?? 0;
    const max = typeof schema.maxLength === 'number' ? Math.min(schema.maxLength, MAX_REPEAT) : Infinity;
    if (min > MAX_REPEAT) this.fail(`minLength above ${MAX_REPEAT} at ${path || '/'} is not supported.`);
    if (min > max) return null;
    const ch = this.stringChar();
    const reps = max === Infinity ? (min === 0 ? '*' : min === 1 ? '+' : `{${min},}`) : min === max ? `{${min}}` : `{${min},${max}}`;
    return this.b.rule(max === Infinity && min === 0 ? 'string' : `string-${min}-${max}`, `"\\"" ${ch}${reps} "\\""`);
  }

  private stringChar(): string {
    // One character of free text: any code point a JSON string holds, or an escape that decodes
    // to one (\" \\ \/ \b \f \n \r \t). Each is one code point, so lengths count exactly.
    const plain = jsonStringCharGbnf(STRING_UNIVERSE)!;
    return this.b.rule('char', `(${plain.replace(/^\(|\)$/g, '')} | "\\\\" [/bfnrt])`);
  }

  private object(schema: JsonObject, path: string, level: number): string | null {
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    const required = new Set((schema.required as string[] | undefined) ?? []);
    // An object schema that names no properties at all means "any object" (llama.cpp does the
    // same); otherwise an absent additionalProperties generates no extra keys.
    const describesNothing = schema.properties === undefined && schema.required === undefined;
    const additional = (schema.additionalProperties ?? (describesNothing ? true : undefined)) as Schema | undefined;
    const kv = (name: string, value: string): string => `${gbnfLiteral(JSON.stringify(name))} ":" ${this.ws} ${value}`;
    const req: string[] = [];
    const opt: string[] = [];
    const names = Object.keys(props);
    for (const name of names) {
      const g = this.value(props[name]!, `${path}/properties/${escapePointer(name)}`, level);
      if (required.has(name)) {
        if (g === null) return null;
        req.push(this.b.rule(`${hintOf(path)}-${name}-kv`, kv(name, g)));
      } else if (g !== null) {
        opt.push(this.b.rule(`${hintOf(path)}-${name}-kv`, kv(name, g)));
      }
    }
    for (const name of required) {
      if (name in props) continue;
      // Required but not described: its value follows additionalProperties.
      const g = additional === undefined ? this.anyValue(0) : this.value(additional, `${path}/additionalProperties`, level);
      if (g === null) return null;
      req.push(this.b.rule(`${hintOf(path)}-${name}-kv`, kv(name, g)));
    }
    let extra: string | null = null;
    if (additional !== undefined && additional !== false) {
      const g = this.value(additional, `${path}/additionalProperties`, level);
      if (g !== null) extra = this.b.rule(`${hintOf(path)}-extra-kv`, `"\\"" ${this.extraKey([...names, ...required])} "\\"" ":" ${this.ws} ${g}`);
    }
    const sep = `"," ${this.ws}`;
    const extraTail = extra ? ` (${sep} ${extra})*` : '';
    let members: string;
    if (req.length > 0) {
      members = req.join(` ${sep} `) + opt.map((o) => ` (${sep} ${o})?`).join('') + extraTail;
    } else if (opt.length === 0 && !extra) {
      return '"{" ' + this.ws + ' "}"';
    } else {
      // Any subset of the optional properties in order: pick the first present one, the rest
      // are each optional. rest[i] is the tail after property i, shared as a rule (linear size).
      const rest: string[] = new Array<string>(opt.length + 1);
      rest[opt.length] = extraTail.trim() === '' ? '""' : extraTail.trim();
      for (let i = opt.length - 1; i >= 0; i--) {
        rest[i] = this.b.rule(`${hintOf(path)}-rest`, `(${sep} ${opt[i]})? ${rest[i + 1]}`);
      }
      const firsts = opt.map((o, i) => `${o} ${rest[i + 1]}`);
      if (extra) firsts.push(`${extra}${extraTail}`);
      return this.b.rule(`${hintOf(path)}-object`, `"{" ${this.ws} ((${firsts.join(' | ')}) ${this.ws})? "}"`);
    }
    return this.b.rule(`${hintOf(path)}-object`, `"{" ${this.ws} ${members} ${this.ws} "}"`);
  }

  /** 1-32 characters of [A-Za-z0-9_-], never one of `known` (a trie of the known names). */
  private extraKey(known: string[]): string {
    const alphabet: [number, number][] = [
      [0x2d, 0x2d],
      [0x30, 0x39],
      [0x41, 0x5a],
      [0x5f, 0x5f],
      [0x61, 0x7a],
    ];
    const inAlpha = (c: string): boolean => /^[A-Za-z0-9_-]$/.test(c);
    const names = new Set(known.filter((n) => n.length <= EXTRA_KEY_MAX && [...n].every(inAlpha)));
    const tail = (used: number): string => (EXTRA_KEY_MAX - used > 0 ? `[A-Za-z0-9_\\-]{0,${EXTRA_KEY_MAX - used}}` : '""');
    const node = (prefix: string): string => {
      const children = [...new Set([...names].filter((n) => n.startsWith(prefix) && n.length > prefix.length).map((n) => n[prefix.length]!))].sort();
      const options: string[] = [];
      if (prefix.length > 0 && !names.has(prefix)) options.push('""');
      if (children.length > 0) {
        for (const c of children) options.push(`"${c}" ${node(prefix + c)}`);
        const others = alphabet
          .flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => String.fromCharCode(a + i)))
          .filter((c) => !children.includes(c));
        if (prefix.length < EXTRA_KEY_MAX && others.length > 0) {
          options.push(`[${others.map((c) => (c === '-' ? '\\-' : c)).join('')}] ${tail(prefix.length + 1)}`);
        }
      } else if (prefix.length < EXTRA_KEY_MAX) {
        options.push(`[A-Za-z0-9_\\-] ${tail(prefix.length + 1)}`);
      }
      return this.b.rule('extra-key', options.length === 1 ? options[0]! : `(${options.join(' | ')})`);
    };
    return node('');
  }

  private array(schema: JsonObject, path: string, level: number): string | null {
    const prefix = (schema.prefixItems as Schema[] | undefined) ?? [];
    const items = schema.items as Schema | undefined;
    const min = (schema.minItems as number | undefined) ?? 0;
    const max = typeof schema.maxItems === 'number' ? Math.min(schema.maxItems, MAX_REPEAT + prefix.length) : Infinity;
    if (min > MAX_REPEAT) this.fail(`minItems above ${MAX_REPEAT} at ${path || '/'} is not supported.`);
    if (min > max) return null;
    const sep = `"," ${this.ws}`;
    const prefixG = prefix.map((p, i) => this.value(p, `${path}/prefixItems/${i}`, level));
    const restG = items === undefined ? this.anyValue(0) : this.value(items, `${path}/items`, level);
    // Elements from position i on; `first` says whether a separator is needed before it.
    const from = (i: number): string | null => {
      if (i >= max) return '""';
      if (i < prefix.length) {
        const g = prefixG[i] ?? null;
        const next = from(i + 1);
        const el = g === null || next === null ? null : `${i > 0 ? sep + ' ' : ''}${g} ${next}`;
        if (i < min) return el;
        return el === null ? '""' : `(${el})?`;
      }
      const restMin = Math.max(0, min - i);
      const restMax = max === Infinity ? Infinity : max - i;
      if (restG === null) return restMin === 0 ? '""' : null;
      const el = this.b.rule(`${hintOf(path)}-item`, restG);
      const sepEl = i > 0 ? `(${sep} ${el})` : null;
      const reps = (lo: number, hi: number): string =>
        hi === Infinity ? (lo === 0 ? '*' : lo === 1 ? '+' : `{${lo},}`) : lo === hi ? `{${lo}}` : `{${lo},${hi}}`;
      if (i > 0) {
        if (restMax === 0) return '""';
        return `${this.b.rule(`${hintOf(path)}-more`, sepEl!)}${reps(restMin, restMax)}`;
      }
      // No element yet: the first has no separator.
      if (restMax === 0) return '""';
      const more = restMax === 1 ? '' : ` ${this.b.rule(`${hintOf(path)}-more`, `(${sep} ${el})`)}${reps(Math.max(0, restMin - 1), restMax - 1)}`;
      const list = `${el}${more}`;
      return restMin === 0 ? `(${list})?` : list;
    };
    const body = from(0);
    if (body === null) return null;
    return this.b.rule(`${hintOf(path)}-array`, `"[" ${this.ws} ${body === '""' ? '' : `(${body}) ${this.ws} `}"]"`);
  }

  /** Any JSON value, nested at most MAX_ANY_DEPTH - depth more levels. */
  private anyValue(depth: number): string {
    const scalars = [this.b.rule('any-string', `"\\"" ${this.stringChar()}* "\\""`), this.b.rule('any-number', numberGrammar(null, null)!), '"true"', '"false"', '"null"'];
    if (depth >= MAX_ANY_DEPTH) return this.b.rule(`any-scalar`, scalars.join(' | '));
    const inner = this.anyValue(depth + 1);
    const sep = `"," ${this.ws}`;
    const key = this.b.rule('any-key', `"\\"" ${this.stringChar()}* "\\""`);
    const member = this.b.rule(`any-member-${depth}`, `${key} ":" ${this.ws} ${inner}`);
    const obj = `"{" ${this.ws} (${member} (${sep} ${member})* ${this.ws})? "}"`;
    const arr = `"[" ${this.ws} (${inner} (${sep} ${inner})* ${this.ws})? "]"`;
    return this.b.rule(`any-${depth}`, [obj, arr, ...scalars].join(' | '));
  }
}

function bound(inclusive: unknown, exclusive: unknown, side: 'min' | 'max'): Bound | null {
  const i = typeof inclusive === 'number' ? inclusive : null;
  const e = typeof exclusive === 'number' ? exclusive : null;
  if (i === null && e === null) return null;
  if (i === null) return { value: e!, exclusive: true };
  if (e === null) return { value: i, exclusive: false };
  const tighter = side === 'min' ? e >= i : e <= i;
  return tighter ? { value: e, exclusive: true } : { value: i, exclusive: false };
}

function jsonType(v: unknown): TypeName {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as TypeName;
}

function escapePointer(name: string): string {
  return name.replace(/~/g, '~0').replace(/\//g, '~1');
}

function hintOf(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== 'properties');
  return parts.slice(-2).join('-') || 'root';
}
