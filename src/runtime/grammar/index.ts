/** Structured output: JSON Schema -> GBNF, raw GBNF checks, the compile cache, output checks. */
export { compileJsonSchema, compileAnyJsonObject, type CompiledGrammar, type CompileOptions } from './json-schema-to-gbnf.js';
export { checkGbnf, GBNF_LIMITS, type GbnfLimits, type GbnfSummary } from './gbnf-check.js';
export { GrammarCache, type CachedGrammar } from './grammar-cache.js';
export { GRAMMAR_LIMITS, SUPPORTED_KEYWORDS, ANNOTATION_KEYWORDS, type SchemaLimits } from './schema-check.js';
export { schemaHash, canonicalJson } from './schema-hash.js';
export { validateOutput, outputValidator, type OutputCheck } from './validate-output.js';
