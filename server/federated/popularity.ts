// Popularity from device reports (PROTOCOL.md P28), as pure functions: each release's per-item
// counts (the two-server channel's per-row counts, P29: how many of the release's devices trained
// each item's row) are added to the server's running totals (all releases, and a trend that
// halves every `trendHalfLife` releases). Once enough devices have reported, the popular,
// trending and per-category pools come from those totals instead of the trainer's log.
import { categoryPools, LOG_POOL_SIZES } from '../../shared/catalogue-pools'
import type { CandidatePools, DeviceCatalogue } from '../../shared/protocol'
import { decodeWeights, encodeWeights } from '../../shared/weights-codec'

export interface PopularitySettings {
  /** Device reports summed before the pools follow them (before: the trainer's pools stay). */
  minReports: number
  /** Releases after which a report's weight in the trending totals has halved. */
  trendHalfLife: number
}

/**
 * Chosen for the 1,024-bucket popularity sketch this channel replaced (BENCHMARKS.md, "Popularity
 * from device reports"): with σ = 1 its pools beat the pre-training log's from 80,000 to 90,000 reports
 * on. The channel's counts are exact and not noised yet, so they would do with far fewer; that
 * is to be measured again once its noise is built (issue 12), and the bar kept until then.
 */
export const DEFAULT_POPULARITY: PopularitySettings = { minReports: 100_000, trendHalfLife: 20 }

/** The server's running totals (kept beside each version like its master, never served). */
export interface PopularityState {
  /** Devices that trained each item's row, over every release. */
  total: Float32Array
  /** The same with older releases decayed. */
  trend: Float32Array
  /** Reports summed into `total`. */
  reports: number
}

/** The next totals: `previous` (or zeros) plus `release`, each item's count in this release. */
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
  catalogue: DeviceCatalogue,
): CandidatePools {
  const popular = ranked(state.total)
  return {
    ...previous,
    popular: popular.slice(0, LOG_POOL_SIZES.popular),
    trending: ranked(state.trend).slice(0, LOG_POOL_SIZES.trending),
    byCategory: categoryPools(catalogue, popular),
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
