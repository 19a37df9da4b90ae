#!/usr/bin/env node
/**
 * `node dist/cli/build-native.js` (the second half of `npm run build`): compiles the persistent
 * llama.cpp thread pool (src/runtime/llama/threadpool/persistent-threadpool.c) into dist/native.
 * Without a C compiler it says so and exits 0: the server then runs llama.cpp with a thread start
 * per step (`runtime.threadpool: auto`). A compiler that fails on the source exits 1.
 */
import { compilePersistentThreadpool } from '../runtime/llama/threadpool/addon.js';

const result = compilePersistentThreadpool();
if (!result.built) {
  if (result.reason.startsWith('no C compiler')) {
    process.stderr.write(
      `build-native: ${result.reason}: the persistent llama.cpp thread pool is not built; multi-thread steps will start their threads each time ` +
        '(install gcc, Debian: apt-get install gcc libc6-dev, and run npm run build again)\n',
    );
  } else {
    process.stderr.write(`build-native: ${result.reason}\n`);
    process.exit(1);
  }
}
