import { createRandom } from '../shared/random'

export interface NegativeSampler {
  /** `count` item ids drawn with probability ∝ popularity^alpha (with replacement). */
  sample(count: number): Int32Array
  /**
   * log of the expected number of times `item` appears among a batch's candidates: `batch`
   * in-batch targets (distributed like the counts) plus `negatives` draws. Subtracting it from
   * the logits (logQ correction) makes the sampled softmax estimate the full one.
   */
  logExpectedCount(item: number, batch: number, negatives: number): number
}

/** Popularity-based negatives (GRU4Rec's "additional samples"), via a cumulative table. */
export function createPopularitySampler(
  counts: Int32Array,
  options: { alpha?: number; seed?: number } = {},
): NegativeSampler {
  const alpha = options.alpha ?? 0.75
  const random = createRandom(options.seed ?? 7)
  const cumulative = new Float64Array(counts.length)
  let total = 0
  let countTotal = 0
  for (let i = 0; i < counts.length; i++) countTotal += counts[i]! + 1
  for (let i = 0; i < counts.length; i++) {
    // +1 keeps never-seen items reachable, so every row of the table receives some gradient.
    total += Math.pow(counts[i]! + 1, alpha)
    cumulative[i] = total
  }
  return {
    sample(count) {
      const out = new Int32Array(count)
      for (let n = 0; n < count; n++) {
        const target = random() * total
        let lo = 0
        let hi = cumulative.length - 1
        while (lo < hi) {
          const mid = (lo + hi) >>> 1
          if (cumulative[mid]! < target) lo = mid + 1
          else hi = mid
        }
        out[n] = lo
      }
      return out
    },
    logExpectedCount(item, batch, negatives) {
      const drawn = cumulative[item]! - (item > 0 ? cumulative[item - 1]! : 0)
      return Math.log((batch * (counts[item]! + 1)) / countTotal + (negatives * drawn) / total)
    },
  }
}

/**
 * Negatives drawn uniformly from a given set of rows only (the release's public negatives of a
 * sparse update, P29): a device then changes no row but the ones it viewed and these. The
 * expected count is the same for every candidate, so the logQ correction is a constant.
 */
export function createSetSampler(rows: Int32Array, seed = 7): NegativeSampler {
  if (rows.length === 0) throw new RangeError('expected at least one negative row')
  const random = createRandom(seed)
  return {
    sample(count) {
      const out = new Int32Array(count)
      for (let n = 0; n < count; n++) out[n] = rows[Math.floor(random() * rows.length)]!
      return out
    },
    logExpectedCount(_item, _batch, negatives) {
      return Math.log(negatives / rows.length)
    },
  }
}
