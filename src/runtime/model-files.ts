/**
 * Model files before any llama.cpp code sees them: the built-in demo model is generated when
 * missing, and every GGUF is validated in TypeScript first (llama.cpp's GGUF parser has had
 * overflow CVEs; a malformed file must be a clear error, not a native crash).
 */
import { existsSync } from 'node:fs';
import type { ModelEntry } from '../config/types.js';
import { InferFluxError } from '../errors.js';
import { ensureModel } from './gguf/generate.js';
import type { GgufInfo } from './gguf/gguf-info.js';
import { validateGguf } from './gguf/reader.js';
import { ModelStore } from './models/model-store.js';

/** Returns each model's validated GGUF header, in `models` order (start-up sizes memory from them). */
export async function prepareModels(models: ModelEntry[], log: (msg: string) => void, modelsDir: string): Promise<GgufInfo[]> {
  const infos: GgufInfo[] = [];
  for (const m of models) {
    if (m.pulled !== undefined) {
      // An entry naming a pulled model serves the file its manifest points to.
      m.path = await pulledModelPath(new ModelStore(modelsDir), m.pulled, `model '${m.id}'`);
      log(`model '${m.id}': pulled model ${m.pulled} -> ${m.path}`);
    }
    if (m.generateIfMissing && !existsSync(m.path)) {
      log(`model '${m.id}': ${m.path} is missing; generating the demo model`);
      await ensureModel('tiny', m.path);
    }
    if (!existsSync(m.path)) throw new Error(`model '${m.id}': file not found: ${m.path}`);
    try {
      infos.push(await validateGguf(m.path));
    } catch (err) {
      throw new Error(`model '${m.id}': ${m.path} is not a valid GGUF file: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return infos;
}

/**
 * The file of a pulled model (`inferctl pull NAME` stored it in the models directory), or
 * `model_not_found` naming the directory and the pull command to run.
 */
export async function pulledModelPath(store: ModelStore, name: string, what?: string): Promise<string> {
  const stored = await store.get(name);
  if (stored === undefined || !existsSync(stored.path)) {
    throw new InferFluxError(
      'model_not_found',
      `${what === undefined ? '' : `${what}: `}'${name}' is not pulled into ${store.dir} (server.models_dir); pull it first with: inferctl pull ${name}`,
      { param: 'model' },
    );
  }
  return stored.path;
}
