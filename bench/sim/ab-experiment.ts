// One A/B experiment as the server would see it (issue 15), over devices whose outcomes are
// known: each device is placed in its arm and random group by the product's keyed hash
// (shared/experiments.ts), reports its clipped (impressions, clicks) once, and the server
// receives per-arm, per-group sums only, a release of `batch` devices at a time, each
// release's sums noised with a Gaussian of σ·√2·C (the L2 bound of one device's report). After
// every release the operator looks: the mSPRT's always-valid interval for the lift
// (shared/experiment-stats.ts).
import {
  addToGroupSums,
  compareArms,
  emptyGroupSums,
  estimateRatio,
  nextLook,
  startSequential,
  type GroupSums,
} from '../../shared/experiment-stats'
import { EXPERIMENT_GROUPS, placeDevice, type Experiment } from '../../shared/experiments'
import { createRandom, standardNormal } from '../../shared/random'

/** A device's outcome under each arm's recommender: lists shown and lists clicked. */
export interface DeviceOutcomes {
  id: string
  /** [arm] → [impressions, clicks] under that arm. */
  byArm: ReadonlyArray<readonly [number, number]>
}

export interface ExperimentRunOptions {
  /** Devices a release sums (the helper's floor, P29c). */
  batch: number
  /** A device's impressions are clipped to this before they are counted (its clicks too). */
  clip: number
  /** The noise multiplier; 0: exact sums. */
  sigma: number
  alpha: number
  /** mSPRT's τ as a share of the control's rate at the first look, then fixed. */
  minimumLift: number
  /** Seeds the noise. */
  seed: number
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
  /** Per arm, the exact sums over its devices and the sums as the server ended with them. */
  trueSums: GroupSums[]
  serverSums: GroupSums[]
}

/** Runs `experiment` (control first, one treatment) over `devices` in their order. */
export function runExperiment(
  experiment: Experiment,
  devices: readonly DeviceOutcomes[],
  options: ExperimentRunOptions,
): ExperimentRun {
  const arms = experiment.arms.length
  if (arms !== 2) throw new RangeError('the simulation compares two arms')
  const random = createRandom(options.seed)
  const sums = () => Array.from({ length: arms }, () => emptyGroupSums(EXPERIMENT_GROUPS))
  const trueSums = sums()
  const serverSums = sums()
  const armDevices = new Array<number>(arms).fill(0)
  let release = sums()
  const looks: Look[] = []
  let state = startSequential()
  let tau = 0
  let decidedAt: number | null = null
  let peekingFlagged = false
  const { clip, sigma } = options
  const publish = () => {
    for (let a = 0; a < arms; a++)
      addNoised(serverSums[a]!, release[a]!, sigma * Math.SQRT2 * clip, random)
    release = sums()
  }
  for (const [i, device] of devices.entries()) {
    const { arm, group } = placeDevice(experiment, device.id)
    const [shown, clicked] = device.byArm[arm]!
    const x = Math.min(shown, clip)
    const y = Math.min(clicked, x)
    addToGroupSums(trueSums[arm]!, group, x, y)
    addToGroupSums(release[arm]!, group, x, y)
    armDevices[arm]! += 1
    if ((i + 1) % options.batch !== 0 && i + 1 !== devices.length) continue
    publish()
    const [control, treatment] = serverSums.map(estimateRatio) as [
      ReturnType<typeof estimateRatio>,
      ReturnType<typeof estimateRatio>,
    ]
    if (tau === 0 && control.rate > 0) tau = options.minimumLift * control.rate
    if (tau === 0) continue
    const c = compareArms(control, treatment, { tau, alpha: options.alpha })
    state = nextLook(state, c)
    if (c.interval[0] > 0 || c.interval[1] < 0) peekingFlagged = true
    if (decidedAt === null && state.pValue <= options.alpha) decidedAt = i + 1
    looks.push({
      devices: i + 1,
      armDevices: [...armDevices],
      rates: [control.rate, treatment.rate],
      lift: c.lift,
      interval: c.interval,
      alwaysValid: state.interval,
      pValue: state.pValue,
    })
  }
  return { looks, decidedAt, peekingFlagged, trueSums, serverSums }
}

/** Adds a release's sums to the server's, each with its Gaussian noise. */
function addNoised(into: GroupSums, release: GroupSums, sd: number, random: () => number): void {
  for (let g = 0; g < into.x.length; g++) {
    into.x[g]! += release.x[g]! + (sd === 0 ? 0 : sd * standardNormal(random))
    into.y[g]! += release.y[g]! + (sd === 0 ? 0 : sd * standardNormal(random))
  }
}
