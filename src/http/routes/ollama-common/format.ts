/**
 * Ollama's `format` (`"json"` or a JSON schema): structured output. It becomes a grammar once the
 * grammar compiler lands (src/runtime/grammar/, a sampling setting); until then this is the one
 * place that decides, and it refuses, so no client believes its output was constrained when it was not.
 */
import { InferFluxError } from '../../../errors.js';

/** The grammar for `format`; today a 400 naming the field. */
export function grammarForFormat(format: unknown): never {
  const what = format === 'json' ? '"json"' : 'a JSON schema';
  throw new InferFluxError(
    'invalid_request',
    `'format' (${what}) is not supported yet: structured output needs the grammar compiler, which this server does not have yet. Remove 'format' and ask for JSON in the prompt.`,
    { param: 'format' },
  );
}
