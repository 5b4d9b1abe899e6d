// Popularity that devices report (PROTOCOL.md P28): each update carries a count sketch of the
// items in the sessions it trained on, each item counted once, clipped to L2 norm 1. The hash is
// seeded by the update's base version, the same for every device trained from it, so the server
// sums the sketches of one seed in bucket space, adds its noise there (sensitivity 1), and reads
// every item's estimate back from its signed bucket. A new seed each version moves the
// collisions, so summed over versions they average out.
import { sketchCell } from './federation-layout'

/** P28's L2 bound of one device's popularity sketch. */
export const POPULARITY_CLIP = 1

/** Keeps the popularity hash apart from the table sketch's (P8b), which is seeded by slices. */
const DOMAIN = 0x706f7075

/** Bucket and sign (±1) of `item` in the popularity sketch seeded by base version `seed`. */
export function popularityCell(seed: number, item: number, buckets: number): [number, number] {
  return sketchCell((seed ^ DOMAIN) >>> 0, item, buckets)
}

/**
 * A device's report: +/−1 in the bucket of every distinct item of `sessions`, scaled down to L2
 * norm `POPULARITY_CLIP` when above it. `norm` is the norm before scaling.
 */
export function sketchPopularity(
  sessions: readonly ArrayLike<number>[],
  seed: number,
  buckets: number,
): { values: Float32Array; norm: number } {
  const values = new Float32Array(buckets)
  const items = new Set<number>()
  for (const session of sessions) for (let i = 0; i < session.length; i++) items.add(session[i]!)
  for (const item of items) {
    const [bucket, sign] = popularityCell(seed, item, buckets)
    values[bucket] = values[bucket]! + sign
  }
  let sum = 0
  for (const value of values) sum += value * value
  const norm = Math.sqrt(sum)
  if (norm > POPULARITY_CLIP) {
    for (let b = 0; b < buckets; b++) values[b] = (values[b]! * POPULARITY_CLIP) / norm
  }
  return { values, norm }
}

/** Adds to every item's estimate its signed bucket of `sums` (the sketches of one seed, summed). */
export function addPopularityEstimate(
  estimate: Float32Array,
  sums: ArrayLike<number>,
  seed: number,
): void {
  for (let item = 0; item < estimate.length; item++) {
    const [bucket, sign] = popularityCell(seed, item, sums.length)
    estimate[item] = estimate[item]! + sign * sums[bucket]!
  }
}
