/**
 * Compiled grammars by schema hash (schema-hash.ts), bounded LRU. The compile is a few ms for
 * real schemas (see docs/grammar.md), which this turns into a Map lookup for repeated schemas.
 * Failed compiles are not cached: they are 400s and cheap to repeat.
 */
import { LRUCache } from 'lru-cache';
import { type CompiledGrammar, compileAnyJsonObject, compileJsonSchema } from './json-schema-to-gbnf.js';
import { GRAMMAR_LIMITS, checkSchemaShape, type SchemaLimits } from './schema-check.js';
import { schemaHash } from './schema-hash.js';

export interface CachedGrammar extends CompiledGrammar {
  /** SHA-256 (hex) of the canonical schema; also the key of validate-output's cache. */
  hash: string;
  /** Milliseconds the compile took (0 when this call hit the cache). */
  compileMs: number;
  cached: boolean;
}

export class GrammarCache {
  private readonly lru: LRUCache<string, CompiledGrammar & { hash: string }>;
  hits = 0;
  misses = 0;

  constructor(
    max = 256,
    private readonly limits: SchemaLimits = GRAMMAR_LIMITS,
  ) {
    this.lru = new LRUCache({ max });
  }

  get size(): number {
    return this.lru.size;
  }

  /** The grammar for a JSON Schema; throws InferFluxError('invalid_request') naming `param`. */
  forSchema(schema: unknown, param: string): CachedGrammar {
    checkSchemaShape(schema, this.limits, param);
    return this.lookup(schemaHash(schema), () => compileJsonSchema(schema, { param, limits: this.limits }));
  }

  /** The grammar for `response_format: {"type": "json_object"}`. */
  forJsonObject(param: string): CachedGrammar {
    return this.lookup(schemaHash(null, 'json_object'), () => compileAnyJsonObject({ param, limits: this.limits }));
  }

  private lookup(hash: string, compile: () => CompiledGrammar): CachedGrammar {
    const hit = this.lru.get(hash);
    if (hit) {
      this.hits++;
      return { ...hit, compileMs: 0, cached: true };
    }
    this.misses++;
    const t0 = performance.now();
    const compiled = compile();
    const compileMs = performance.now() - t0;
    this.lru.set(hash, { ...compiled, hash });
    return { ...compiled, hash, compileMs, cached: false };
  }
}
