/**
 * Polls `fn` every 50 ms until it returns a value (not undefined), or fails naming `what` after
 * `ms`: the tests' one way to wait for a server-side state change they cannot subscribe to.
 */
export async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
