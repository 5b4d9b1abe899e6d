// A/B experiments (issue 15): which arm a device is in. A device draws a random id of its own
// once and keeps it; its arm in an experiment is a keyed hash of that id (HMAC-SHA256 under
// the experiment's key) read as a number in [0, 1) and placed on the arms' cumulative shares.
// The hash is computed on the device and nothing about it is sent: the server learns an arm's
// outcomes only as sums over its devices. Keyed per experiment, so that two experiments split
// the same devices independently, and a device can't steer its arm short of a new id. The same
// hash also puts the device in one of `EXPERIMENT_GROUPS` random groups: devices report their
// outcomes under their group, so that the server can tell how much arms' rates vary from
// group sums alone (shared/experiment-stats.ts), noise included.
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'

export interface ExperimentArm {
  /** Shown to the operator and carried by attribution ids: 1–32 of [A-Za-z0-9_-]. */
  readonly name: string
  /** The arm's share of traffic, > 0; shares are relative (normalised by their sum). */
  readonly share: number
}

export interface Experiment {
  /** Names the experiment in reports and attribution ids: 1–32 of [A-Za-z0-9_-]. */
  readonly id: string
  /** The hash key: changing it reshuffles every device. */
  readonly key: string
  /** The first arm is the control, the one every other arm is compared with. */
  readonly arms: readonly ExperimentArm[]
}

const ARM_NAME = /^[A-Za-z0-9_-]{1,32}$/
const EXPERIMENT_ID = /^[A-Za-z0-9_-]{1,32}$/
export const MAX_ARMS = 8
/** Experiments running at once on one shop. */
export const MAX_EXPERIMENTS = 4
/** A list's attribution id: 32 hex digits and `.<experiment>:<arm>` per experiment. */
export const MAX_ATTRIBUTION_LENGTH = 32 + MAX_EXPERIMENTS * (1 + 32 + 1 + 32)
/** Random groups per arm: the variance of a rate is read off their spread (31 degrees of freedom). */
export const EXPERIMENT_GROUPS = 32

/** Why `experiment` is not one a device can apply, or null when it is. */
export function experimentProblem(experiment: Experiment): string | null {
  if (!EXPERIMENT_ID.test(experiment.id)) return `id ${JSON.stringify(experiment.id)}`
  if (experiment.key.length < 1 || experiment.key.length > 256) return 'key: 1 to 256 characters'
  const { arms } = experiment
  if (arms.length < 2 || arms.length > MAX_ARMS) return `arms: 2 to ${MAX_ARMS}, got ${arms.length}`
  const names = new Set<string>()
  for (const [i, arm] of arms.entries()) {
    if (!ARM_NAME.test(arm.name)) return `arms[${i}].name ${JSON.stringify(arm.name)}`
    if (names.has(arm.name)) return `arms[${i}].name ${arm.name} twice`
    names.add(arm.name)
    if (!(Number.isFinite(arm.share) && arm.share > 0)) return `arms[${i}].share ${arm.share}`
  }
  return null
}

const encoder = new TextEncoder()

/** HMAC-SHA256(key, id): its first 48 bits over 2^48 (the arm), its next 16 (the group). */
function experimentHash(key: string, deviceId: string): { unit: number; group: number } {
  const mac = hmac(sha256, encoder.encode(key), encoder.encode(deviceId))
  let value = 0
  for (let i = 0; i < 6; i++) value = value * 256 + mac[i]!
  return { unit: value / 2 ** 48, group: ((mac[6]! << 8) | mac[7]!) % EXPERIMENT_GROUPS }
}

/** A number in [0, 1), uniform over random ids. */
export const experimentUnit = (key: string, deviceId: string) => experimentHash(key, deviceId).unit

export interface Placement {
  /** The index of the device's arm. */
  arm: number
  /** Its random group, 0 … EXPERIMENT_GROUPS − 1, independent of the arm. */
  group: number
}

/** Where `deviceId` is in `experiment`; throws on an experiment `experimentProblem` refuses. */
export function placeDevice(experiment: Experiment, deviceId: string): Placement {
  const problem = experimentProblem(experiment)
  if (problem !== null) throw new RangeError(`experiment ${experiment.id}: ${problem}`)
  const { unit, group } = experimentHash(experiment.key, deviceId)
  const total = experiment.arms.reduce((sum, arm) => sum + arm.share, 0)
  const point = unit * total
  let edge = 0
  for (const [i, arm] of experiment.arms.entries()) {
    edge += arm.share
    if (point < edge) return { arm: i, group }
  }
  return { arm: experiment.arms.length - 1, group } // rounding at the top edge
}
