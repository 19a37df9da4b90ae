/**
 * Model files before any llama.cpp code sees them: the built-in demo model is generated when
 * missing, and every GGUF is validated in TypeScript first (llama.cpp's GGUF parser has had
 * overflow CVEs; a malformed file must be a clear error, not a native crash).
 */
import { existsSync } from 'node:fs';
import type { ModelEntry } from '../config/types.js';
import { ensureModel } from './gguf/generate.js';
import { validateGguf } from './gguf/reader.js';

export async function prepareModels(models: ModelEntry[], log: (msg: string) => void): Promise<void> {
  for (const m of models) {
    if (m.generateIfMissing && !existsSync(m.path)) {
      log(`model '${m.id}': ${m.path} is missing; generating the demo model`);
      await ensureModel('tiny', m.path);
    }
    if (!existsSync(m.path)) throw new Error(`model '${m.id}': file not found: ${m.path}`);
    try {
      await validateGguf(m.path);
    } catch (err) {
      throw new Error(`model '${m.id}': ${m.path} is not a valid GGUF file: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
