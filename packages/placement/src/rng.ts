/**
 * Deterministic randomness. The engine never calls Math.random: every random choice comes from the seed the
 * caller passes in `PlaceOptions.seed`, so the same snapshot + request + seed gives the same plan.
 */

/** mulberry32: a small, fast 32-bit PRNG; good enough for tie-breaks and rotations, not for cryptography. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seeded 32-bit hash of a string (FNV-1a, then a murmur3 finaliser). Used as the tie-break key: it depends
 * only on the seed and the candidate's identity, so ties break the same way whatever order candidates arrive in.
 */
export function seededHash(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
