/**
 * Model presets: what Ollama's `POST /api/create` makes from an existing model and a Modelfile's
 * SYSTEM, PARAMETER, MESSAGE and LICENSE lines. A preset is a name over a served model (its base)
 * with defaults: no weights are copied or loaded twice, and a request naming the preset runs on
 * the base with the preset's system prompt, message history and sampling parameters under the
 * request's own. Kept beside the pulled models:
 *
 *   presets/<encoded name>.json   one small file per preset, written atomically (temp + rename)
 *
 * Read per lookup (a small file, only for names that are not served models), so replicas sharing
 * `server.models_dir` see each other's presets without a cache to go stale.
 */
import { rm } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { InferFluxError } from '../../errors.js';
import { readJsonDir, readJsonFile, writeJsonAtomically } from './json-dir.js';
import { checkModelName } from './model-ref.js';

/** Modelfile PARAMETERs this server runs (Ollama's option names; see ollama-common/options.ts). */
export interface PresetParameters {
  num_predict?: number;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  seed?: number;
  stop?: string[];
  repeat_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  num_ctx?: number;
}

export interface PresetMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ModelPreset {
  /** Normalised (`:latest` dropped), as `checkModelName` returns it. */
  name: string;
  /** The served model id it runs on. */
  from: string;
  /** Used when a chat has no system message of its own (a generate request's `system` replaces it). */
  system: string | null;
  /** Conversation placed before the request's messages. */
  messages: PresetMessage[];
  /** Defaults under the request's own options. */
  parameters: PresetParameters;
  license: string[];
  /** ISO 8601. */
  created_at: string;
}

export class PresetStore {
  readonly dir: string;

  constructor(modelsDir: string) {
    this.dir = resolve(modelsDir, 'presets');
  }

  private fileOf(name: string): string {
    const abs = resolve(join(this.dir, `${encodeURIComponent(checkModelName(name))}.json`));
    if (!abs.startsWith(this.dir + sep)) throw new InferFluxError('invalid_request', `refusing path outside the presets directory: ${abs}`);
    return abs;
  }

  /** The preset of that name, or undefined (also for a name that is not a valid model name). */
  async get(name: string): Promise<ModelPreset | undefined> {
    let file: string;
    try {
      file = this.fileOf(name);
    } catch {
      return undefined;
    }
    return readJsonFile(file, parsePreset);
  }

  /** Every preset; a file that does not parse is skipped. */
  list(): Promise<ModelPreset[]> {
    return readJsonDir(this.dir, parsePreset);
  }

  /** Writes (or replaces) a preset atomically. */
  async put(p: ModelPreset): Promise<ModelPreset> {
    const preset = { ...p, name: checkModelName(p.name) };
    await writeJsonAtomically(this.dir, this.fileOf(preset.name), preset);
    return preset;
  }

  /** Removes the preset; false when there was none of that name. */
  async remove(name: string): Promise<boolean> {
    if (!(await this.get(name))) return false;
    await rm(this.fileOf(name), { force: true });
    return true;
  }
}

function parsePreset(text: string): ModelPreset {
  const p = JSON.parse(text) as ModelPreset;
  if (typeof p.name !== 'string' || typeof p.from !== 'string' || !Array.isArray(p.messages) || typeof p.parameters !== 'object' || p.parameters === null) {
    throw new Error('not a model preset');
  }
  return p;
}
