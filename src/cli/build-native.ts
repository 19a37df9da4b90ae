#!/usr/bin/env node
/**
 * `node dist/cli/build-native.js` (the second half of `npm run build`): compiles the persistent
 * llama.cpp thread pool (src/runtime/llama/threadpool/persistent-threadpool.c) into dist/native.
 * The server runs without it (llama.cpp then starts its threads every step, `runtime.threadpool:
 * auto`), so nothing here fails the build: no Linux, no C compiler or a compiler error is said and
 * the build goes on. test/unit/persistent-threadpool.test.ts fails where it does not build.
 */
import { compilePersistentThreadpool } from '../runtime/llama/threadpool/addon.js';

const LATER = 'llama.cpp will start its threads every step (slower on 2+ threads per worker)';

if (process.platform !== 'linux') {
  // It binds node-llama-cpp's llama.cpp calls through the ELF global scope (RTLD_GLOBAL), which is Linux's.
  process.stderr.write(`build-native: the persistent llama.cpp thread pool is Linux-only; ${LATER}\n`);
} else {
  const result = compilePersistentThreadpool();
  if (!result.built) {
    const fix = result.reason.startsWith('no C compiler') ? ' (install gcc, Debian: apt-get install gcc libc6-dev, and run npm run build again)' : '';
    process.stderr.write(`build-native: the persistent llama.cpp thread pool was not built: ${result.reason}${fix}; ${LATER}\n`);
  }
}
