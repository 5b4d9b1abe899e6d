// Local fine-tuning when the shopper pauses: each stored event restarts an idle timer; when it
// fires, the recent sessions train the runtime's model in one tab at a time (training-lock.ts),
// each next item weighted by the shop's event weights (P30d); the tuned weights are kept in
// IndexedDB and the federated round (federated/round.ts) follows.
// The training itself is the model part's (model-part.ts, loaded with the model: rt.part).
import type { WorkerStatus } from '../../shared/protocol'
import type { FederatedRound } from './federated/round'
import { runWithTrainingLock, type TrainingLocks } from './federated/training-lock'
import type { Storage } from './storage'
import { engagementWeight } from '../../shared/events'
import type { Runtime } from './worker-runtime'

const MAX_LOSSES = 300
/** The shopper paused this long after an event: a good moment to fine-tune. */
const TRAIN_AFTER_IDLE_MS = 1500

export type TrainingProgress = WorkerStatus['training']

export interface TrainingScheduleDeps {
  /** Web Locks for one trainer across tabs; defaults to `navigator.locks`, null for none. */
  locks?: TrainingLocks | null
  /** The storage while consent holds, else null: read again after every wait. */
  consented(): Storage | null
  ready(): Promise<Runtime>
  round: FederatedRound
}

export interface TrainingSchedule {
  /** Restarts the idle timer: called after every stored event. */
  schedule(): void
  /** Clears the timer and aborts a run (and its round) in progress. */
  stop(): void
  /** The state, the steps so far and a copy of the recent losses, oldest first. */
  progress(): TrainingProgress
  /** The runtime loaded fine-tuned weights: counting goes on from their steps. */
  restoreSteps(steps: number): void
  /** Forgets the steps and losses (the shopper's data is gone). */
  resetProgress(): void
}

/**
 * The recent sessions as model rows, oldest first, with their stored ids and, per row, its
 * weight as a fine-tuning target under the shop's event weights (P30d: the strongest thing the
 * shopper did with the product there, relative to a view).
 */
async function sessionsAsIndices(
  rt: Runtime,
  store: Storage,
): Promise<Array<{ id: number; items: Int32Array; weights: Float32Array }>> {
  const byId = new Map(rt.release.catalogue.items.map((item) => [item.id, item.index]))
  const eventWeights = rt.release.rules.eventWeights
  const sessions = await store.events.recentSessions(20)
  return sessions
    .reverse() // oldest first
    .map((s) => {
      const known = s.productIds.flatMap((id, i) => {
        const index = byId.get(id)
        return index === undefined
          ? []
          : [[index, engagementWeight(eventWeights, s.strengths?.[i], s.dwell?.[i])] as const]
      })
      return {
        id: s.id,
        items: Int32Array.from(known, ([index]) => index),
        weights: Float32Array.from(known, ([, weight]) => weight),
      }
    })
    .filter((s) => s.items.length >= 2)
}

export function createTrainingSchedule(deps: TrainingScheduleDeps): TrainingSchedule {
  const training: TrainingProgress = { state: 'idle', steps: 0, losses: [] }
  let trainTimer: ReturnType<typeof setTimeout> | undefined
  let trainAbort: AbortController | null = null

  async function trainNow(): Promise<void> {
    const store = deps.consented()
    if (!store) return
    const rt = await deps.ready()
    const recent = await sessionsAsIndices(rt, store)
    const sessions = recent.map((s) => s.items)
    if (sessions.length === 0) return
    const run = async () => {
      training.state = 'training'
      trainAbort = new AbortController()
      // The shop's tuned rate when its manifest has one (an absent key keeps the default).
      const tuned = rt.release.manifest.localTraining
      const result = await rt.part.createLocalTrainer(rt.model, { ...tuned }).train(sessions, {
        signal: trainAbort.signal,
        weights: recent.map((s) => s.weights),
        onStep: (progress) => {
          training.steps += 1
          training.losses.push(progress.loss)
          if (training.losses.length > MAX_LOSSES) training.losses.shift()
        },
      })
      trainAbort = null
      training.state = 'idle'
      if (result.changed && deps.consented() === store) {
        rt.recommender.refresh()
        const bytes = await rt.part.localWeightsBytes(rt.model)
        await store.artifacts.saveLocalWeights({
          baseVersion: rt.release.manifest.version,
          bytes,
          steps: training.steps,
        })
      }
      // Federated learning is best effort: a failure here never costs the shopper anything.
      const { manifestUrl, release } = rt
      const { prepareUpload: prepare, buildOutcomeReports: buildReports } = rt.part
      await deps.round
        .run({ manifestUrl, release, store, sessions, prepare, buildReports })
        .catch(() => {})
    }
    training.state = 'waiting-for-lock'
    // Another tab holding the lock trains on the same database: this one need not.
    const outcome = await runWithTrainingLock(run, { locks: deps.locks })
    if (outcome.status === 'held-elsewhere') training.state = 'idle'
  }

  return {
    schedule() {
      clearTimeout(trainTimer)
      trainTimer = setTimeout(() => {
        trainNow().catch(() => {
          training.state = 'idle'
        })
      }, TRAIN_AFTER_IDLE_MS)
    },

    stop() {
      clearTimeout(trainTimer)
      trainAbort?.abort()
      deps.round.stop()
    },

    progress: () => ({ ...training, losses: training.losses.slice() }),

    restoreSteps(steps) {
      training.steps = steps
    },

    resetProgress() {
      training.steps = 0
      training.losses = []
    },
  }
}
