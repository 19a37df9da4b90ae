/**
 * Every native call node-llama-cpp makes (decodeBatch, sampleToken, model and context loads) runs
 * on libuv's process-wide thread pool, shared by all worker threads, which defaults to 4. With
 * more engine workers than that, decodes would queue behind each other (and behind fs work), so
 * size the pool before its first use. libuv reads UV_THREADPOOL_SIZE once, when the pool starts,
 * so this must run before the first asynchronous fs/crypto/dns call of the process.
 */
export function sizeThreadPool(engineWorkers: number, env: NodeJS.ProcessEnv = process.env): number {
  if (env.UV_THREADPOOL_SIZE) return Number(env.UV_THREADPOOL_SIZE);
  // Per engine: one decode plus concurrent samplings; plus room for fs (audit, model loads).
  const size = Math.min(128, Math.max(4, engineWorkers * 2 + 4));
  env.UV_THREADPOOL_SIZE = String(size);
  return size;
}
