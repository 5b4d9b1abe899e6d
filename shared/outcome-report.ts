// A device's outcomes in an experiment as the servers will receive them (issue 15, P30): one
// fixed-size vector per experiment, a cell per (arm, scenario, metric, random group), holding the
// device's clipped counts in its own arm's and group's cells and zero everywhere else, split into
// two additive shares in Z/2³² (one per server, as the update channel's dense window is, P29b).
// Either share alone is uniformly random; only the sum of a batch's shares, added by both
// servers, shows anything, and then only totals per cell. No item id is in it, and every
// device's vector has the same size whatever it did. Each server may add its half of a Gaussian
// noise to its sum before the two are added (P20): the total then carries noise of the stated
// standard deviation per cell, which the operator's intervals carry with them
// (shared/experiment-stats.ts reads variance off the groups' spread).
//
// After the arms' cells, every report has one more section (P30f): exploration's counts per
// bucket of item ids, how often the device showed an item of the bucket in an exploration slot
// and whether it clicked one there. Only the arm that explored fills it; summed over the batches
// it is the prior of the devices' Thompson draws (explore.ts), so that a new item the fleet has
// clicked is shown more, and one it has ignored less, without any device naming an item.
import { EXPERIMENT_GROUPS } from './experiments'
import { SCENARIOS } from './artifacts'
import {
  emptyOutcomeCounts,
  EXPLORE_BUCKETS,
  OUTCOME_METRICS,
  type ExploreCounts,
  type OutcomeCounts,
  type OutcomeMetric,
} from './outcome-counts'
import { standardNormal } from './random'

/**
 * The most one report counts per scenario: what bounds one device's influence on a total (and
 * sets the noise, P20). Revenue is in whole currency units: a bucket of one unit, clipped.
 */
export const OUTCOME_CLIPS: Readonly<Record<OutcomeMetric, number>> = {
  // 99 % of training sessions have at most 17 steps on DIGINETICA and on YooChoose.
  lists: 20,
  clicks: 20,
  adds: 10,
  purchases: 5,
  revenue: 1000,
}

const S = SCENARIOS.length
const M = OUTCOME_METRICS.length
const G = EXPERIMENT_GROUPS

/**
 * The most one report counts per bucket: impressions in exploration slots, clicks on them. Low,
 * since the noise is σ times these per bucket and batch, and a shopper shown a new item a few
 * times without a click has told what more impressions would (explore.ts demotes it).
 */
export const EXPLORE_CLIPS = { shown: 4, clicked: 1 } as const
/** The exploration section: each bucket's impressions, then each bucket's clicks. */
export const EXPLORE_CELLS = 2 * EXPLORE_BUCKETS

/** Where a report's exploration section starts: after the arms' cells. */
export const exploreOffset = (arms: number) => arms * S * M * G

/** Cells of one experiment's report: arms × scenarios × metrics × groups, then exploration. */
export const reportCells = (arms: number) => exploreOffset(arms) + EXPLORE_CELLS

/** A report's cell of an arm's scenario-and-metric `cell` (outcomeCell) in a random group. */
export const cellOf = (arm: number, cell: number, group: number) => (arm * S * M + cell) * G + group

/**
 * A device's counts as one report may carry them: each clipped to its bound, clicks also to the
 * lists they can come from (a click credits a list), and whole numbers from 0 up.
 */
export function clipCounts(counts: OutcomeCounts): OutcomeCounts {
  if (counts.length !== S * M) throw new RangeError(`expected ${S * M} counts`)
  const clipped = emptyOutcomeCounts()
  for (let s = 0; s < S; s++) {
    for (const [m, metric] of OUTCOME_METRICS.entries()) {
      const bound =
        metric === 'clicks'
          ? Math.min(OUTCOME_CLIPS.clicks, clipped[s * M]!)
          : OUTCOME_CLIPS[metric]
      clipped[s * M + m] = clip(counts[s * M + m]!, bound)
    }
  }
  return clipped
}

/** Adds clipped counts into `cells` (a report, or a sum of reports) at an arm's and group's cells. */
export function addToCells(
  cells: Uint32Array,
  arms: number,
  arm: number,
  group: number,
  clipped: OutcomeCounts,
): void {
  if (!(arm >= 0 && arm < arms && group >= 0 && group < G && cells.length === reportCells(arms))) {
    throw new RangeError(`expected arm < ${arms}, group < ${G} and ${reportCells(arms)} cells`)
  }
  for (let cell = 0; cell < S * M; cell++) {
    const i = cellOf(arm, cell, group)
    cells[i] = (cells[i]! + clipped[cell]!) >>> 0
  }
}

/**
 * The device's report: its clipped counts in its arm's and group's cells, its exploration counts
 * (each bucket's, clipped) in the section, zero elsewhere.
 */
export function buildOutcomeReport(
  arms: number,
  arm: number,
  group: number,
  counts: OutcomeCounts,
  explored: ExploreCounts = [],
): Uint32Array {
  const report = new Uint32Array(reportCells(arms))
  addToCells(report, arms, arm, group, clipCounts(counts))
  const offset = exploreOffset(arms)
  for (const [bucket, shown, clicked] of explored) {
    if (!(Number.isInteger(bucket) && bucket >= 0 && bucket < EXPLORE_BUCKETS)) continue
    report[offset + bucket] = clip(shown, EXPLORE_CLIPS.shown)
    // A click may come the day after its impression: not bounded by this day's impressions.
    report[offset + EXPLORE_BUCKETS + bucket] = clip(clicked, EXPLORE_CLIPS.clicked)
  }
  return report
}

const clip = (value: number, bound: number) =>
  Number.isFinite(value) ? Math.min(Math.max(Math.round(value), 0), bound) : 0

/** Two additive shares of `report` in Z/2³²: `random` must be a CSPRNG's words. */
export function splitReport(
  report: Uint32Array,
  random: (words: number) => Uint32Array,
): [Uint32Array, Uint32Array] {
  const helper = random(report.length)
  if (helper.length !== report.length) throw new RangeError('expected a word per cell')
  const leader = new Uint32Array(report.length)
  for (let i = 0; i < report.length; i++) leader[i] = (report[i]! - helper[i]!) >>> 0
  return [leader, helper]
}

/** One server's sum of a batch's shares, in Z/2³². */
export function sumShares(shares: readonly Uint32Array[], cells: number): Uint32Array {
  const sum = new Uint32Array(cells)
  for (const share of shares) {
    if (share.length !== cells) throw new RangeError(`expected ${cells} cells, got ${share.length}`)
    for (let i = 0; i < cells; i++) sum[i] = (sum[i]! + share[i]!) >>> 0
  }
  return sum
}

/**
 * A server's half of the noise: N(0, (σ·clip)² / 2) per cell of each metric and of the
 * exploration section, rounded, so the two halves add up to σ·clip per cell. σ = 0 adds nothing.
 */
export function addHalfNoise(
  sum: Uint32Array,
  arms: number,
  sigma: number,
  random: () => number,
): void {
  if (sigma === 0) return
  for (let arm = 0; arm < arms; arm++) {
    for (let cell = 0; cell < S * M; cell++) {
      const sd = (sigma * OUTCOME_CLIPS[OUTCOME_METRICS[cell % M]!]) / Math.SQRT2
      for (let g = 0; g < G; g++) {
        const i = cellOf(arm, cell, g)
        sum[i] = (sum[i]! + Math.round(sd * standardNormal(random))) >>> 0
      }
    }
  }
  const offset = exploreOffset(arms)
  for (let cell = 0; cell < EXPLORE_CELLS; cell++) {
    const bound = cell < EXPLORE_BUCKETS ? EXPLORE_CLIPS.shown : EXPLORE_CLIPS.clicked
    const i = offset + cell
    sum[i] = (sum[i]! + Math.round((sigma * bound * standardNormal(random)) / Math.SQRT2)) >>> 0
  }
}

/** The two servers' sums added: each cell a signed total (noise may take it below zero). */
export function combineSums(leader: Uint32Array, helper: Uint32Array): Int32Array {
  if (leader.length !== helper.length) throw new RangeError('expected sums of one layout')
  const total = new Int32Array(leader.length)
  for (let i = 0; i < total.length; i++) total[i] = (leader[i]! + helper[i]!) | 0
  return total
}
