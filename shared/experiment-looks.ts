// An experiment read look by look (issue 15): after each batch of reports the operator sees every
// arm's rate of a metric with its fixed-horizon interval, and each arm against the control with
// the always-valid interval and p-value of the mSPRT carried over the looks so far
// (experiment-stats.ts), each arm's metric read per group off the totals (ratioSums). One reader
// for the operator page and `npm run sim:ab`, so that what the simulation shows is what the
// dashboard computes; kept out of outcome-report.ts, which the worker's first-list entry carries.
import {
  compareArms,
  emptyGroupSums,
  estimateRatio,
  mixtureTau,
  nextLook,
  normalQuantile,
  startSequential,
  type GroupSums,
  type RatioEstimate,
  type SequentialState,
} from './experiment-stats'
import { SCENARIOS } from './artifacts'
import { EXPERIMENT_GROUPS } from './experiments'
import { outcomeCell, type OutcomeMetric } from './outcome-counts'
import { cellOf } from './outcome-report'
import type { Scenario } from './protocol'

/** What the dashboard shows per list: click-through, add-to-cart, conversion, revenue. */
export const LIST_RATES: ReadonlyArray<{ metric: OutcomeMetric; label: string }> = [
  { metric: 'clicks', label: 'click-through (clicks per list)' },
  { metric: 'adds', label: 'add-to-cart (adds per list)' },
  { metric: 'purchases', label: 'conversion (purchases per list)' },
  { metric: 'revenue', label: 'revenue per list' },
]

export interface ArmVersusControl {
  lift: number
  /** Fixed-horizon interval: valid at one look only. */
  interval: [number, number]
  /** The mSPRT's running interval and p-value: valid at every look. */
  alwaysValid: [number, number]
  pValue: number
  /** p ≤ α at this look or an earlier one. */
  significant: boolean
}

export interface Look {
  /** Each arm's rate and its fixed-horizon interval. */
  arms: Array<{ rate: number; interval: [number, number] }>
  /** Arms 1… against arm 0, the control; empty until τ can be set (a rate with data). */
  versusControl: ArmVersusControl[]
}

export interface LookOptions {
  /** 0.05 unless given. */
  alpha?: number
  /** mSPRT's τ as a share of the arms' mean rate at the first look (mixtureTau); 0.1 unless given. */
  minimumLift?: number
}

/** Follows one metric of one experiment over its looks. */
export function createLookReader(arms: number, options: LookOptions = {}) {
  const alpha = options.alpha ?? 0.05
  const z = normalQuantile(1 - alpha / 2)
  let tau = 0
  let states: SequentialState[] = Array.from({ length: arms - 1 }, startSequential)
  return {
    /** The next look, from each arm's estimate on the totals so far. */
    look(
      estimates: readonly RatioEstimate[],
    ): Look & { comparisons: ReturnType<typeof compareArms>[] } {
      if (estimates.length !== arms) throw new RangeError(`expected ${arms} estimates`)
      const shown = estimates.map((e) => {
        const half = z * Math.sqrt(e.variance)
        return { rate: e.rate, interval: [e.rate - half, e.rate + half] as [number, number] }
      })
      if (tau === 0)
        tau = mixtureTau(
          estimates.map((e) => e.rate),
          options.minimumLift,
        )
      if (!(tau > 0)) {
        tau = 0
        return { arms: shown, versusControl: [], comparisons: [] }
      }
      const comparisons = estimates
        .slice(1)
        .map((e) => compareArms(estimates[0]!, e, { tau, alpha }))
      states = states.map((state, i) => nextLook(state, comparisons[i]!))
      return {
        arms: shown,
        comparisons,
        versusControl: comparisons.map((c, i) => ({
          lift: c.lift,
          interval: c.interval,
          alwaysValid: states[i]!.interval,
          pValue: states[i]!.pValue,
          significant: states[i]!.pValue <= alpha,
        })),
      }
    },
  }
}

/** An arm's metric over lists, per group, in one scenario or summed over all of them. */
export function listRateSums(
  totals: Int32Array,
  arm: number,
  numerator: OutcomeMetric,
  scenario?: Scenario,
): GroupSums {
  if (scenario) return ratioSums(totals, arm, scenario, numerator)
  const sums = emptyGroupSums(EXPERIMENT_GROUPS)
  for (const s of SCENARIOS) {
    const one = ratioSums(totals, arm, s, numerator)
    for (let g = 0; g < EXPERIMENT_GROUPS; g++) {
      sums.x[g]! += one.x[g]!
      sums.y[g]! += one.y[g]!
    }
  }
  return sums
}

/**
 * Every look at every list rate of an experiment from its batches' totals (oldest first): look
 * k reads the sum of the first k batches.
 */
export function readExperiment(
  batches: readonly Int32Array[],
  arms: number,
  options: LookOptions = {},
): Array<{ metric: OutcomeMetric; label: string; looks: Look[] }> {
  const cumulative: Int32Array[] = []
  for (const batch of batches) {
    const last = cumulative[cumulative.length - 1]
    cumulative.push(last ? last.map((v, i) => v + batch[i]!) : batch.slice())
  }
  return LIST_RATES.map(({ metric, label }) => {
    const reader = createLookReader(arms, options)
    const looks = cumulative.map((totals) => {
      const estimates = Array.from({ length: arms }, (_, a) =>
        estimateRatio(listRateSums(totals, a, metric)),
      )
      const { comparisons: _c, ...look } = reader.look(estimates)
      return look
    })
    return { metric, label, looks }
  })
}

/**
 * One arm's ratio metric in one scenario from the combined totals, per group: e.g. clicks over
 * lists (click-through), adds over lists, purchases over lists.
 */
export function ratioSums(
  totals: Int32Array,
  arm: number,
  scenario: Scenario,
  numerator: OutcomeMetric,
  denominator: OutcomeMetric = 'lists',
): GroupSums {
  const sums = emptyGroupSums(EXPERIMENT_GROUPS)
  for (let g = 0; g < EXPERIMENT_GROUPS; g++) {
    sums.x[g] = totals[cellOf(arm, outcomeCell(scenario, denominator), g)]!
    sums.y[g] = totals[cellOf(arm, outcomeCell(scenario, numerator), g)]!
  }
  return sums
}
