// A tiny seeded PRNG (mulberry32, 32-bit state) so initialisation, shuffles, sampling and fuzz
// cases are reproducible on every platform and backend (tfjs' own random ops differ by backend).

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

/** A standard normal draw from `random` (Box–Muller; 1 − u keeps the logarithm finite). */
export function standardNormal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
}

/**
 * A Gamma(shape, 1) draw: Marsaglia and Tsang's squeeze method, for a shape below 1 boosted by
 * one and scaled by U^(1/shape).
 */
export function gammaDraw(shape: number, random: () => number): number {
  if (!(shape > 0)) throw new RangeError(`expected a positive shape, got ${shape}`)
  if (shape < 1) return gammaDraw(shape + 1, random) * (1 - random()) ** (1 / shape)
  const d = shape - 1 / 3
  const c = 1 / Math.sqrt(9 * d)
  for (;;) {
    const x = standardNormal(random)
    const v = (1 + c * x) ** 3
    if (v <= 0) continue
    if (Math.log(1 - random()) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v
  }
}

/** A Beta(a, b) draw, as the first of two gamma draws over their sum. */
export function betaDraw(a: number, b: number, random: () => number): number {
  const x = gammaDraw(a, random)
  return x / (x + gammaDraw(b, random))
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
