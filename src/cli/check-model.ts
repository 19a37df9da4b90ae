#!/usr/bin/env node
/**
 * `check-model [--load] [--base MODEL] FILE...`: runs the server's GGUF validation (the one `prepareModels` and
 * the admin load use) on each file and prints one JSON line per file:
 * `{"file", "accepted": true}` or `{"file", "accepted": false, "reason", "message"}`. With `--load`,
 * each accepted file is also loaded by llama.cpp (model + a small context, as an engine worker
 * does) and the line says `"loaded": true`, or `"loaded": false` with llama.cpp's error.
 *
 * The GGUF fuzz test runs this in a child process: a file that passes validation and then aborts
 * llama.cpp ends this process with a signal, which the parent counts as a crash. Lines are
 * written before each load, so the parent knows which file was being loaded.
 * With `--base MODEL`, each FILE is a LoRA adapter checked against MODEL (the admin adapter load's
 * check, runtime/gguf/lora.ts); `--load` then loads MODEL once and, for each accepted adapter,
 * creates a context with it applied and evaluates a few tokens (where a graph assert would fire).
 * Exit 0 when every file was handled (accepted or not), 2 on usage errors.
 */
import { writeSync } from 'node:fs';
import { LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import { getThreadLlama } from '../runtime/llama/thread-llama.js';
import { GgufFormatError, validateGguf, type GgufInfo } from '../runtime/gguf/reader.js';
import { validateLoraFile } from '../runtime/gguf/lora.js';

function line(obj: object): void {
  // Synchronous: the line must be out before a native abort can end the process.
  writeSync(1, JSON.stringify(obj) + '\n');
}

async function main(argv: string[]): Promise<number> {
  const load = argv.includes('--load');
  const at = argv.indexOf('--base');
  const basePath = at >= 0 ? argv[at + 1] : undefined;
  const files = argv.filter((a, i) => a !== '--load' && i !== at && i !== at + 1);
  if (files.length === 0 || files.some((f) => f.startsWith('-')) || (at >= 0 && !basePath)) {
    process.stderr.write('usage: check-model [--load] [--base MODEL] FILE...\n');
    return 2;
  }
  if (basePath !== undefined) return checkAdapters(basePath, files, load);
  const opened: Opened = { llama: null };
  try {
    await checkEach(files, validateGguf, load ? loadModelOnce : null, opened);
  } finally {
    // Exiting with live llama.cpp objects aborts the process; dispose first.
    await opened.llama?.dispose();
  }
  return 0;
}

/** A model (and a small context, as an engine worker creates) loaded and disposed again. */
async function loadModelOnce(llama: Llama, file: string): Promise<void> {
  const model = await llama.loadModel({ modelPath: file, useMmap: true, gpuLayers: 0 });
  try {
    const context = await model.createContext({ contextSize: 128, sequences: 1, threads: 1 });
    await context.dispose();
  } finally {
    await model.dispose();
  }
}

interface Opened {
  llama: Llama | null;
}

/**
 * One line per file: refused by `validate`, accepted, or (with `loadOne`) a "loading" line first,
 * then loaded or not with llama.cpp's error. llama.cpp is opened on the first load only.
 */
async function checkEach(
  files: string[],
  validate: (file: string) => Promise<unknown>,
  loadOne: ((llama: Llama, file: string) => Promise<void>) | null,
  opened: Opened,
): Promise<void> {
  for (const file of files) {
    try {
      await validate(file);
    } catch (err) {
      const reason = err instanceof GgufFormatError ? err.reason : 'io_error';
      line({ file, accepted: false, reason, message: err instanceof Error ? err.message : String(err) });
      continue;
    }
    if (!loadOne) {
      line({ file, accepted: true });
      continue;
    }
    line({ file, accepted: true, loading: true });
    opened.llama ??= await getThreadLlama({ gpu: false, logLevel: LlamaLogLevel.disabled, maxThreads: 1 });
    try {
      await loadOne(opened.llama, file);
      line({ file, accepted: true, loaded: true });
    } catch (err) {
      line({ file, accepted: true, loaded: false, message: err instanceof Error ? err.message : String(err) });
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`check-model: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

/** `--base`: adapters checked against the base model, then applied by llama.cpp one at a time. */
async function checkAdapters(basePath: string, files: string[], load: boolean): Promise<number> {
  const base: GgufInfo = await validateGguf(basePath);
  const opened: Opened = { llama: null };
  const held: { model: LlamaModel | null } = { model: null };
  const applyAdapter = async (llama: Llama, file: string): Promise<void> => {
    // The base loads once, on the first accepted adapter.
    const model = (held.model ??= await llama.loadModel({ modelPath: basePath, useMmap: true, gpuLayers: 0 }));
    const context = await model.createContext({ contextSize: 128, sequences: 1, threads: 1, lora: { adapters: [{ filePath: file, scale: 1 }] } });
    try {
      const seq = context.getSequence();
      await seq.evaluateWithoutGeneratingNewTokens(model.tokenize('Hello there', true));
    } finally {
      await context.dispose();
    }
  };
  try {
    await checkEach(files, (file) => validateLoraFile(file, base), load ? applyAdapter : null, opened);
  } finally {
    await held.model?.dispose();
    await opened.llama?.dispose();
  }
  return 0;
}
