// Popularity from device reports (PROTOCOL.md P28), as pure functions: a release sums the
// popularity sketches of its buffer per seed (the base version they were trained from), noises
// every bucket, reads each item's estimate back, and adds it to the server's running totals
// (all releases, and a trend that halves every `trendHalfLife` releases). Once enough devices
// have reported, the popular, trending and per-category pools come from those totals instead of
// the trainer's log.
import { cataloguePools, LOG_POOL_SIZES } from '../../shared/catalogue-pools'
import { addPopularityEstimate, POPULARITY_CLIP } from '../../shared/popularity-sketch'
import type { CandidatePools, Catalogue } from '../../shared/protocol'
import { decodeWeights, encodeWeights } from '../../shared/weights-codec'

export interface PopularitySettings {
  /** Device reports summed before the pools follow them (before: the trainer's pools stay). */
  minReports: number
  /** Releases after which a report's weight in the trending totals has halved. */
  trendHalfLife: number
}

/**
 * Chosen on DIGINETICA's validation split (`npm run bench:popularity`, BENCHMARKS.md): with 1,024
 * buckets and σ = 1, the popular pool from reports holds more of the held-out next items than the
 * pre-training log's from between 80,000 and 90,000 reports on (trending from about 50,000);
 * before that, noise and bucket collisions cost more than the log's age.
 */
export const DEFAULT_POPULARITY: PopularitySettings = { minReports: 100_000, trendHalfLife: 20 }

/** The server's running totals (kept beside each version like its master, never served). */
export interface PopularityState {
  /** Estimated sessions holding each item, over every report. */
  total: Float32Array
  /** The same with older releases decayed. */
  trend: Float32Array
  /** Reports summed into `total`. */
  reports: number
}

/**
 * Σ of the buffer's sketches per seed, each bucket noised with N(0, σ²): the sensitivity of one
 * device is POPULARITY_CLIP (P15: one update per device per release). `gaussian` draws N(0, 1).
 */
export function sumReports(
  reports: readonly { seed: number; values: Float32Array }[],
  buckets: number,
  noiseMultiplier: number,
  gaussian: () => number,
): Map<number, Float64Array> {
  const sums = new Map<number, Float64Array>()
  for (const { seed, values } of reports) {
    if (values.length !== buckets) {
      throw new RangeError(`expected ${buckets} popularity buckets, got ${values.length}`)
    }
    let sum = sums.get(seed)
    if (!sum) sums.set(seed, (sum = new Float64Array(buckets)))
    for (let b = 0; b < buckets; b++) sum[b] = sum[b]! + values[b]!
  }
  const scale = noiseMultiplier * POPULARITY_CLIP
  if (scale > 0) {
    for (const sum of sums.values()) for (let b = 0; b < buckets; b++) sum[b]! += scale * gaussian()
  }
  return sums
}

/** The next totals: `previous` (or zeros) plus this release's estimates from sketch sums (P28). */
export function advancePopularity(
  previous: PopularityState | undefined,
  sums: Map<number, Float64Array>,
  reports: number,
  nItems: number,
  trendHalfLife: number,
): PopularityState {
  const release = new Float32Array(nItems)
  for (const [seed, sum] of sums) addPopularityEstimate(release, sum, seed)
  return addRelease(previous, release, reports, trendHalfLife)
}

/**
 * The next totals: `previous` (or zeros) plus `release`, each item's count in this release (the
 * sketches' estimates, or the two-server channel's exact per-row counts, P29).
 */
export function addRelease(
  previous: PopularityState | undefined,
  release: Float32Array,
  reports: number,
  trendHalfLife: number,
): PopularityState {
  const nItems = release.length
  const decay = 0.5 ** (1 / trendHalfLife)
  const total = new Float32Array(nItems)
  const trend = new Float32Array(nItems)
  for (let i = 0; i < nItems; i++) {
    total[i] = (previous?.total[i] ?? 0) + release[i]!
    trend[i] = (previous?.trend[i] ?? 0) * decay + release[i]!
  }
  return { total, trend, reports: (previous?.reports ?? 0) + reports }
}

/** Items with a positive estimate, highest first (ties by index). */
function ranked(scores: Float32Array): number[] {
  const items: number[] = []
  for (let i = 0; i < scores.length; i++) if (scores[i]! > 0) items.push(i)
  return items.sort((a, b) => scores[b]! - scores[a]! || a - b)
}

/**
 * Pools from the reports: popular and trending by the totals, the category pools re-ranked by
 * them; `new` and co-visitation stay `previous`'s.
 */
export function poolsFromReports(
  state: PopularityState,
  previous: CandidatePools,
  catalogue: Catalogue,
): CandidatePools {
  const popular = ranked(state.total)
  return {
    ...previous,
    popular: popular.slice(0, LOG_POOL_SIZES.popular),
    trending: ranked(state.trend).slice(0, LOG_POOL_SIZES.trending),
    byCategory: cataloguePools(catalogue, popular).byCategory,
  }
}

export function encodePopularityState(state: PopularityState): Uint8Array {
  return encodeWeights(
    {
      format: 'pocketrec-popularity',
      meta: { reports: state.reports },
      tensors: [
        { name: 'total', shape: [state.total.length], values: state.total },
        { name: 'trend', shape: [state.trend.length], values: state.trend },
      ],
    },
    { dtype: 'float32' },
  )
}

export function decodePopularityState(bytes: Uint8Array): PopularityState {
  const file = decodeWeights(bytes)
  const tensor = (name: string) => {
    const found = file.tensors.find((t) => t.name === name)
    if (!found) throw new Error(`expected a ${name} tensor in the popularity state`)
    return found.values
  }
  return { total: tensor('total'), trend: tensor('trend'), reports: Number(file.meta.reports) }
}
