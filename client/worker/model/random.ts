// A tiny seeded PRNG so that initialisation, shuffling and sampling are reproducible on every
// backend (tfjs' own random ops differ between backends).

/** mulberry32: 32-bit state, good enough for shuffles and initialisation. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Fisher–Yates in place. */
export function shuffleInPlace<T>(items: T[] | Int32Array, random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const tmp = items[i]!
    items[i] = items[j]!
    items[j] = tmp
  }
}

/** Uniform(-limit, limit) values. */
export function fillUniform(size: number, limit: number, random: () => number): Float32Array {
  const values = new Float32Array(size)
  for (let i = 0; i < size; i++) values[i] = (random() * 2 - 1) * limit
  return values
}
