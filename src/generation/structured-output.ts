/**
 * Constrained output for any protocol: what a request asks for (a JSON Schema, any JSON object, or
 * raw GBNF) becomes the GBNF the engine samples with, checked before any work (an unsupported
 * keyword or a bad grammar is a 400 naming the request's parameter), plus what the output is
 * validated against afterwards (ajv; the grammar makes it near-certain, this makes it checked).
 * Compiled grammars are cached by schema hash for the process.
 */
import { InferFluxError } from '../errors.js';
import { GrammarCache, checkGbnf, outputValidator, validateOutput, type OutputCheck } from '../runtime/grammar/index.js';

export type OutputSpec =
  | { kind: 'json_schema'; schema: unknown; param: string }
  | { kind: 'json_object'; param: string }
  | { kind: 'gbnf'; text: string; param: string };

/** What a finished choice is checked against: a schema (null = any JSON object). */
export interface OutputCheckSpec {
  schema: unknown;
  hash: string;
}

export interface OutputConstraint {
  /** The GBNF the engine samples with (SamplingSettings.grammar). */
  grammar: string;
  /** Null for raw GBNF: there is no schema to check the text against. */
  check: OutputCheckSpec | null;
  /** Compile time of this call (0 on a cache hit). */
  compileMs: number;
}

const cache = new GrammarCache(256);

export function compileOutputConstraint(spec: OutputSpec): OutputConstraint {
  switch (spec.kind) {
    case 'json_schema': {
      if (spec.schema === undefined || spec.schema === null || typeof spec.schema !== 'object' || Array.isArray(spec.schema)) {
        throw new InferFluxError('invalid_request', `'${spec.param}' must be a JSON Schema object.`, { param: spec.param });
      }
      const g = cache.forSchema(spec.schema, spec.param);
      // Compiled up front: a schema ajv cannot compile is the request's fault, found before any work.
      outputValidator(spec.schema, spec.param, g.hash);
      return { grammar: g.gbnf, check: { schema: spec.schema, hash: g.hash }, compileMs: g.compileMs };
    }
    case 'json_object': {
      const g = cache.forJsonObject(spec.param);
      return { grammar: g.gbnf, check: { schema: null, hash: g.hash }, compileMs: g.compileMs };
    }
    case 'gbnf': {
      const t0 = performance.now();
      checkGbnf(spec.text, spec.param);
      return { grammar: spec.text, check: null, compileMs: performance.now() - t0 };
    }
    default: {
      const never: never = spec;
      throw new Error(`unknown output spec ${String(never)}`);
    }
  }
}

/** A finished choice's text against its check. */
export function checkOutput(check: OutputCheckSpec, text: string): OutputCheck {
  return validateOutput(check.schema, text, check.hash);
}
