// A device's side of the operator's A/B experiments (PROTOCOL.md P30). The device draws a random
// id of its own once (kept in IndexedDB, never sent), places itself in each experiment the
// manifest names by the keyed hash of shared/experiments.ts, and keeps that arm for as long as
// the experiment runs under the same key: a change of traffic shares moves no device that is
// already in, only where new devices land. Every list names the device's arms in its attribution
// id, so the events that credit a list credit its arm too.
import { placeDevice } from '../../shared/experiments'
import type { ArmPolicy, ManifestExperiment } from '../../shared/protocol'
import type { KeptArm } from './storage/schema'

export interface Placed {
  experiment: ManifestExperiment
  arm: ArmPolicy
  /** The device's random group in this experiment (its outcomes are reported under it). */
  group: number
}

export interface ExperimentStore {
  loadExperiments(): Promise<{ deviceId: string; arms: KeptArm[] } | null>
  saveExperiments(deviceId: string, arms: KeptArm[]): Promise<void>
}

/** 16 random bytes, base64url: this device's id for experiments only. */
export function newExperimentDeviceId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16))
  let text = ''
  for (const b of bytes) text += String.fromCharCode(b)
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * This device's arm in each of `experiments`: the kept one while the experiment's key and that
 * arm are unchanged, else placed now and kept. Arms of experiments that ended are forgotten.
 */
export async function placeInExperiments(
  store: ExperimentStore,
  experiments: readonly ManifestExperiment[],
  newId: () => string = newExperimentDeviceId,
): Promise<Placed[]> {
  const stored = await store.loadExperiments()
  if (experiments.length === 0 && !stored?.arms.length) return []
  const deviceId = stored?.deviceId ?? newId()
  const kept = stored?.arms ?? []
  const placed = experiments.map((experiment): Placed => {
    const same = kept.find((k) => k.experiment === experiment.id && k.key === experiment.key)
    const keptArm = same && experiment.arms.find((arm) => arm.name === same.arm)
    const { arm, group } = placeDevice(experiment, deviceId)
    return { experiment, arm: keptArm || experiment.arms[arm]!, group }
  })
  const arms = placed.map(({ experiment, arm }) => ({
    experiment: experiment.id,
    key: experiment.key,
    arm: arm.name,
  }))
  if (!stored || JSON.stringify(arms) !== JSON.stringify(kept)) {
    await store.saveExperiments(deviceId, arms)
  }
  return placed
}

/**
 * `placeInExperiments` for one store, one call at a time: a page asks for its shelves together,
 * and concurrent first calls would each draw an id and place the device by it (the last one
 * written wins, and earlier lists named arms of ids the device no longer has). The answer for
 * the same experiments (the same release) is kept.
 */
export function createExperimentPlacer(
  store: ExperimentStore,
  newId?: () => string,
): (experiments: readonly ManifestExperiment[]) => Promise<Placed[]> {
  let queue: Promise<unknown> = Promise.resolve()
  let last: { experiments: readonly ManifestExperiment[]; placed: Promise<Placed[]> } | null = null
  return (experiments) => {
    if (last?.experiments === experiments) return last.placed
    const placed = queue.then(() => placeInExperiments(store, experiments, newId))
    queue = placed.catch(() => {})
    last = { experiments, placed }
    // A failed read or write is tried again by the next list.
    placed.catch(() => {
      if (last?.placed === placed) last = null
    })
    return placed
  }
}

/** `.<experiment>:<arm>` per experiment, appended to a list's attribution id. */
export function armsSuffix(placed: readonly Placed[]): string {
  return placed.map(({ experiment, arm }) => `.${experiment.id}:${arm.name}`).join('')
}

/** The arms an attribution id names, as [experiment, arm] pairs (none for an id without). */
export function armsOfAttribution(attributionId: string): Array<[string, string]> {
  return attributionId
    .split('.')
    .slice(1)
    .map((part) => part.split(':') as [string, string])
    .filter((pair) => pair.length === 2)
}
