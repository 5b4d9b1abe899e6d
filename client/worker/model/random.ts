// Seeded helpers for initialisation and shuffling, on the isomorphic PRNG in shared/.
import { createRandom } from '../../../shared/random'

export { createRandom }

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
