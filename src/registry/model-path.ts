/**
 * Where an admin load may read a model from: an existing regular file, and, when
 * `server.admin_load_dir` is set, one inside that directory once every symlink is resolved (so
 * `../`, absolute paths elsewhere and links pointing out are all refused the same way).
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { InferFluxError } from '../errors.js';

/** The resolved real path of `requested`, or `invalid_model_path` saying why not. */
export async function checkModelPath(requested: string, modelsDir: string): Promise<string> {
  const bad = (why: string): InferFluxError => new InferFluxError('invalid_model_path', `Model path '${requested}' ${why}`, { param: 'path' });
  if (requested.includes('\0')) throw bad('contains a NUL byte.');
  // Relative paths are taken inside the models directory (the natural reading of `--load x.gguf`).
  const absolute = path.resolve(modelsDir || process.cwd(), requested);
  let real: string;
  try {
    real = await realpath(absolute);
  } catch {
    throw bad('does not exist or is not readable by the server.');
  }
  const st = await stat(real);
  if (!st.isFile()) throw bad('is not a regular file.');
  if (modelsDir) {
    const root = await realpath(modelsDir).catch(() => path.resolve(modelsDir));
    const rel = path.relative(root, real);
    if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) throw bad(`is outside the models directory (server.admin_load_dir = ${modelsDir}).`);
  }
  return real;
}
