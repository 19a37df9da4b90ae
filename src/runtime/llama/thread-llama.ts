/**
 * The one way a worker thread gets its `Llama`: node-llama-cpp's `getLlama`, then the JS log
 * callback detached, so llama.cpp writes its (error-level) lines straight to stderr.
 *
 * Why: the addon keeps ONE process-wide thread-safe log function, bound to the thread that last
 * called `getLlama`. A line llama.cpp logs from any thread is delivered to that thread's event
 * loop; when that thread is a worker being terminated (an engine whose model failed to load, a
 * model being unloaded), the delivery runs JavaScript in a dying environment and node-addon-api
 * aborts the whole process (`FATAL ERROR: Error::Error napi_define_properties`, seen in CI when
 * two engines of an unloadable model failed at once). With the callback detached right after
 * `getLlama`, no worker owns it past its own start-up, and the native logger falls back to
 * writing the line itself.
 */
import { LlamaLogLevel, getLlama, type Llama } from 'node-llama-cpp';

export interface ThreadLlamaOptions {
  /** 'metal' for backend: mps (macOS on Apple silicon), else CPU only (never CUDA or Vulkan: the image drops them). */
  gpu: false | 'metal';
  /** ggml compute threads this thread's contexts may use. */
  maxThreads: number;
  /** llama.cpp's own log level; `error` unless a caller wants silence (CLI checks). */
  logLevel?: LlamaLogLevel;
}

/** The addon's logger setter: called without a function it releases the JS callback. */
interface AddonBindings {
  setLogger?: (callback?: unknown) => void;
}

export async function getThreadLlama(opts: ThreadLlamaOptions): Promise<Llama> {
  const llama = await getLlama({ gpu: opts.gpu, build: 'never', logLevel: opts.logLevel ?? LlamaLogLevel.error, maxThreads: opts.maxThreads });
  detachJsLogger(llama);
  return llama;
}

function detachJsLogger(llama: Llama): void {
  const bindings = (llama as unknown as { _bindings?: AddonBindings })._bindings;
  if (typeof bindings?.setLogger !== 'function') {
    throw new Error('node-llama-cpp changed: Llama._bindings.setLogger is gone (see src/runtime/llama/thread-llama.ts)');
  }
  bindings.setLogger();
}
