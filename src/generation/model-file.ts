/**
 * What a model's GGUF file says about itself (metadata, chat template, size, weight type), read
 * with the project's GGUF reader once per file and cached: `/api/show` and `/api/tags` ask on
 * every call, and a header read walks every metadata key and tensor info.
 */
import { stat } from 'node:fs/promises';
import { InferFluxError } from '../errors.js';
import { dominantType } from '../runtime/gguf/gguf-info.js';
import { readGgufHeader, type GgufInfo } from '../runtime/gguf/reader.js';
import type { ModelFileInfo } from './contract.js';

interface Cached {
  info: GgufInfo;
  size: number;
  modifiedMs: number;
}

export class ModelFileCache {
  private readonly files = new Map<string, Promise<Cached>>();

  async get(path: string, maxArray: number): Promise<ModelFileInfo> {
    let entry = this.files.get(path);
    if (!entry) {
      entry = load(path);
      this.files.set(path, entry);
      // A failed read is not kept: the file may be fixed or replaced.
      entry.catch(() => this.files.delete(path));
    }
    const { info, size, modifiedMs } = await entry;
    const metadata: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(info.metadata)) {
      metadata[key] = Array.isArray(value) ? (value.length > maxArray ? [] : value.map(jsonValue)) : jsonValue(value);
    }
    const template = info.metadata['tokenizer.chat_template'];
    return { metadata, chatTemplate: typeof template === 'string' ? template : '', size, modifiedMs, quantization: dominantType(info) };
  }
}

async function load(path: string): Promise<Cached> {
  try {
    const [info, st] = await Promise.all([readGgufHeader(path), stat(path)]);
    return { info, size: st.size, modifiedMs: st.mtimeMs };
  } catch (err) {
    throw new InferFluxError('model_not_loaded', `Cannot read the model file's metadata: ${(err as Error).message}`, { cause: err });
  }
}

/** 64-bit GGUF integers arrive as bigint; JSON has only numbers (exact up to 2^53, enough for counts). */
function jsonValue(v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v;
}

