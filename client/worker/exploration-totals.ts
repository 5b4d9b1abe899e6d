// The fleet's exploration counts (P30f), the prior of an exploring arm's Thompson draws
// (recommend/explore.ts): every device's impressions of explored items and clicks on them, summed
// per bucket of item ids by the two servers and noised, `GET /v1/exploration` on the federation's
// origin. Asked at most hourly and in the background, so a list never waits on it; until an
// answer, and whenever one fails or is malformed, the device's own counts are all it uses. Kept
// in memory only: the totals are public, and a reload asks again (the answer may be cached five
// minutes). Loaded with the model part: a federated release's lists are the model's.
import { exploreBucket, EXPLORE_BUCKETS } from '../../shared/outcome-counts'
import type { ExplorationTotals } from '../../shared/protocol'
import { betaDraw } from '../../shared/random'

export const EXPLORATION_REFRESH_MS = 3_600_000

export interface ExplorationTotalsDeps {
  fetch: typeof fetch
  now: () => number
}

export function createExplorationTotals(deps: ExplorationTotalsDeps) {
  let totals: ExplorationTotals | undefined
  let askedAt = Number.NEGATIVE_INFINITY
  const ask = async (url: URL) => {
    const response = await deps.fetch(url, { credentials: 'omit' })
    if (!response.ok) return
    totals = readExplorationTotals(await response.json()) ?? totals
  }
  return {
    /** The last counts had from the federation of `manifestUrl`; asks anew when an hour old. */
    current(manifestUrl: URL): ExplorationTotals | undefined {
      if (deps.now() - askedAt >= EXPLORATION_REFRESH_MS) {
        askedAt = deps.now()
        ask(new URL('/v1/exploration', manifestUrl)).catch(() => {})
      }
      return totals
    },
  }
}

/** A server's answer if it has the layout this code counts in, else null. */
export function readExplorationTotals(raw: unknown): ExplorationTotals | null {
  if (typeof raw !== 'object' || raw === null) return null
  const { buckets, shown, clicked } = raw as Partial<ExplorationTotals>
  const counts = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length === EXPLORE_BUCKETS && v.every((n) => Number.isFinite(n))
  return buckets === EXPLORE_BUCKETS && counts(shown) && counts(clicked)
    ? (raw as ExplorationTotals)
    : null
}

/** The fleet's evidence on an item in exploration slots: clicks, impressions without one. */
export interface ExplorePrior {
  clicks: number
  misses: number
}

/** An item's prior: its bucket's counts, below zero (noise) read as none. */
export function explorePrior(totals: ExplorationTotals, productId: string): ExplorePrior {
  const bucket = exploreBucket(productId)
  const clicks = Math.max(0, totals.clicked[bucket]!)
  return { clicks, misses: Math.max(0, totals.shown[bucket]! - clicks) }
}

/**
 * Thompson draws with the fleet's counts as the prior: Beta(1 + clicks, 1 + misses + n), n the
 * item's impressions to this shopper since their last click; so an item other shoppers clicked is
 * shown more, and one they ignored less.
 */
export function fleetDraw(totals: ExplorationTotals) {
  return (productId: string, impressions: number, random: () => number): number => {
    const { clicks, misses } = explorePrior(totals, productId)
    const b = 1 + misses + impressions
    return clicks > 0 ? betaDraw(1 + clicks, b, random) : 1 - (1 - random()) ** (1 / b)
  }
}
