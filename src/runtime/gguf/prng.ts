/**
 * The one deterministic PRNG of the project: mulberry32 (tiny, fast, identical on every platform).
 * The model and adapter generators draw weights from it, one stream per tensor name; benches and
 * fuzz tests draw cases from it, so a seed names one exact sequence.
 */

/** Uniform unsigned 32-bit integers. */
export function mulberry32U32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  const next = mulberry32U32(seed);
  return () => next() / 4294967296;
}

/** FNV-1a of a name mixed with the seed, so each tensor's stream is independent of tensor order. */
export function nameSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
