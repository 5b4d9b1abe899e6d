// One A/B experiment as the servers would see it (issue 15, P30), over devices whose outcomes
// are known, through the product's own code: each device is placed in its arm and random group
// by the keyed hash (shared/experiments.ts), builds its clipped outcome report and splits it into
// the two servers' shares (shared/outcome-report.ts); each server sums a release of `batch`
// devices' shares and adds its half of the noise (σ times each metric's clip per cell), and the
// two sums are added into the totals. After every release the operator looks: the mSPRT's
// always-valid interval for the lift in click-through, read as the operator page reads it
// (shared/experiment-looks.ts).
import { createLookReader, ratioSums } from '../../shared/experiment-looks'
import { estimateRatio } from '../../shared/experiment-stats'
import { placeDevice, type Experiment } from '../../shared/experiments'
import { emptyOutcomeCounts, outcomeCell, type OutcomeCounts } from '../../shared/outcome-counts'
import {
  addHalfNoise,
  addToCells,
  clipCounts,
  combineSums,
  reportCells,
  splitReport,
  sumShares,
} from '../../shared/outcome-report'
import { createRandom } from '../../shared/random'

/** The simulation's lists are for-you lists. */
const SCENARIO = 'for-you'

/** A device's outcome under each arm's recommender: lists shown and lists clicked. */
export interface DeviceOutcomes {
  id: string
  /** [arm] → [lists, clicks] under that arm. */
  byArm: ReadonlyArray<readonly [number, number]>
}

export interface ExperimentRunOptions {
  /** Devices a release sums (the federation's K). */
  batch: number
  /** The noise multiplier; 0: exact sums. */
  sigma: number
  alpha: number
  /** mSPRT's τ as a share of the arms' mean rate at the first look, then fixed (mixtureTau). */
  minimumLift: number
  /** Seeds the noise and the shares. */
  seed: number
  /**
   * Split every report into two shares and sum each server's apart, as the product does; off,
   * reports are added directly, which the shares sum to exactly (shared/outcome-report.test.ts):
   * the many A/A runs take that shortcut.
   */
  split: boolean
}

export interface Look {
  devices: number
  /** Devices in each arm so far. */
  armDevices: number[]
  rates: number[]
  lift: number
  interval: [number, number]
  alwaysValid: [number, number]
  pValue: number
}

export interface ExperimentRun {
  looks: Look[]
  /** Devices at the first look whose always-valid interval excluded 0 (null: never). */
  decidedAt: number | null
  /** The one-look interval excluded 0 at some look (what peeking would have claimed). */
  peekingFlagged: boolean
  /** Every cell: the devices' clipped reports added up, and the totals the servers ended with. */
  trueTotals: Int32Array
  serverTotals: Int32Array
}

/** A device's report counts under each arm: its lists and clicks, clipped as a report clips. */
export function clippedByArm(device: DeviceOutcomes): OutcomeCounts[] {
  return device.byArm.map(([lists, clicks]) => {
    const counts = emptyOutcomeCounts()
    counts[outcomeCell(SCENARIO, 'lists')] = lists
    counts[outcomeCell(SCENARIO, 'clicks')] = clicks
    return clipCounts(counts)
  })
}

/** Runs `experiment` (control first, one treatment) over `devices` in their order. */
export function runExperiment(
  experiment: Experiment,
  devices: readonly DeviceOutcomes[],
  options: ExperimentRunOptions,
  clipped: readonly OutcomeCounts[][] = devices.map(clippedByArm),
): ExperimentRun {
  const arms = experiment.arms.length
  if (arms !== 2) throw new RangeError('the simulation compares two arms')
  const random = createRandom(options.seed)
  const words = (n: number) => Uint32Array.from({ length: n }, () => (random() * 2 ** 32) >>> 0)
  const cells = reportCells(arms)
  const trueTotals = new Uint32Array(cells)
  let serverTotals = new Int32Array(cells)
  // A release's shares as each server received them, or (the shortcut) the reports added up.
  let received: [Uint32Array[], Uint32Array[]] = [[], []]
  let direct = new Uint32Array(cells)
  const armDevices = new Array<number>(arms).fill(0)
  const looks: Look[] = []
  const reader = createLookReader(arms, options)
  let decidedAt: number | null = null
  let peekingFlagged = false
  for (const [i, device] of devices.entries()) {
    const { arm, group } = placeDevice(experiment, device.id)
    const counts = clipped[i]![arm]!
    addToCells(trueTotals, arms, arm, group, counts)
    if (options.split) {
      const report = new Uint32Array(cells)
      addToCells(report, arms, arm, group, counts)
      const [leaderShare, helperShare] = splitReport(report, words)
      received[0].push(leaderShare)
      received[1].push(helperShare)
    } else {
      addToCells(direct, arms, arm, group, counts)
    }
    armDevices[arm]! += 1
    if ((i + 1) % options.batch !== 0 && i + 1 !== devices.length) continue
    // A release: each server sums what it received and adds its half of the noise; the leader
    // adds the two.
    const leader = options.split ? sumShares(received[0], cells) : direct
    const helper = options.split ? sumShares(received[1], cells) : new Uint32Array(cells)
    addHalfNoise(leader, arms, options.sigma, random)
    addHalfNoise(helper, arms, options.sigma, random)
    const release = combineSums(leader, helper)
    serverTotals = serverTotals.map((v, c) => v + release[c]!)
    received = [[], []]
    direct = new Uint32Array(cells)
    const estimates = [0, 1].map((a) =>
      estimateRatio(ratioSums(serverTotals, a, SCENARIO, 'clicks')),
    )
    const look = reader.look(estimates)
    const [c] = look.comparisons
    const [versus] = look.versusControl
    if (!c || !versus) continue
    if (c.interval[0] > 0 || c.interval[1] < 0) peekingFlagged = true
    if (decidedAt === null && versus.significant) decidedAt = i + 1
    looks.push({
      devices: i + 1,
      armDevices: [...armDevices],
      rates: [estimates[0]!.rate, estimates[1]!.rate],
      lift: c.lift,
      interval: c.interval,
      alwaysValid: versus.alwaysValid,
      pValue: versus.pValue,
    })
  }
  return { looks, decidedAt, peekingFlagged, trueTotals: new Int32Array(trueTotals), serverTotals }
}
