// On-device fine-tuning: the global model is adapted in place to this shopper's own sessions
// while they are idle. Steps run in time slices of `sliceMs` and the worker's event loop gets a
// turn between slices, so `recommend` calls are answered during a run. A run that diverges is
// undone as a whole: a device never keeps non-finite weights.
import * as tf from '@tensorflow/tfjs-core'
import type { GruModel } from './gru-model'
import { createPopularitySampler, createSetSampler, type NegativeSampler } from './negative-sampler'
import { expandPrefixes, type PrefixCase } from './prefix-cases'
import { createRandom, shuffleInPlace } from '../shared/random'
import { encodeSessionBatch } from './session-batch'
import { createTrainer, type Trainer } from './train-step'

export interface LocalTrainerOptions {
  learningRate?: number
  /** Prefix cases per Adam step. */
  batchSize?: number
  /** Uniform negatives per step, on top of the batch's own targets. */
  negatives?: number
  /** Passes over the shopper's cases in one run. */
  epochs?: number
  /** Only the most recent cases are used, which bounds a run for a shopper with a long history. */
  maxCases?: number
  /** Steps run back to back until this much time has passed, then the event loop gets a turn. */
  sliceMs?: number
  /** `items`: only the item embedding moves; the GRU, attention and readout stay global. */
  trainable?: 'all' | 'items'
  /** `adam` for fine-tuning; federated updates train with `sgd` (train-step.ts says why). */
  optimizer?: 'adam' | 'sgd'
  /** Whether the session's other next items are negatives for each case (train-step.ts). */
  inBatchNegatives?: boolean
  /** SGD: the rate of every weight but the item table (train-step.ts); 0: they stay. */
  denseLearningRate?: number
  /**
   * Draw negatives uniformly from these rows only (a sparse update's public negatives, P29)
   * instead of from the whole table.
   */
  negativeRows?: Int32Array
  seed?: number
}

// Chosen on DIGINETICA's validation split (the last 5 % of training sessions, which the global
// model never trained on), never the test set, with `npm run sim:local -- --on validation`:
// fine-tuning every weight lost Recall@20 even at lr 1e-4 (51.91 → 50.64 on 300 sessions), the
// item embedding alone gained at every lr from 1e-4 to 3e-3 and lost at 1e-2; 20 epochs overfit,
// batch 1 and 64 or 1,024 negatives were no better. On all 852 long validation sessions these
// defaults give Recall@20 50.20 → 51.04 and MRR@20 15.80 → 16.46. The rate does not transfer:
// on YooChoose's validation split (2,933 items) 3e-3 cost 1.3 points of MRR@20 and 3e-4 was
// neutral. So each shop's manifest may carry its own rate (localTraining.learningRate, set
// with export:artifacts --local-lr after this simulation), which the worker passes in here.
/**
 * Every option set, except the SGD-only dense rate (absent: the one rate for all) and the sparse
 * update's negatives (absent: the whole table).
 */
export type LocalTrainerSettings = Required<
  Omit<LocalTrainerOptions, 'denseLearningRate' | 'negativeRows'>
> &
  Pick<LocalTrainerOptions, 'denseLearningRate' | 'negativeRows'>

export const DEFAULT_LOCAL_TRAINER_OPTIONS: LocalTrainerSettings = {
  learningRate: 0.003,
  batchSize: 16,
  negatives: 256,
  epochs: 10,
  maxCases: 1000,
  sliceMs: 30,
  trainable: 'items',
  optimizer: 'adam',
  inBatchNegatives: true,
  seed: 1,
}

export interface LocalStepProgress {
  /** 1-based step of this run. */
  step: number
  /** Steps this run plans: epochs × batches, capped by `maxSteps`. */
  steps: number
  epoch: number
  /** 1-based time slice the step ran in. */
  slice: number
  /** The batch's mean loss (sampled softmax: not comparable with a full-softmax loss). */
  loss: number
}

export interface LocalRunOptions {
  signal?: AbortSignal
  maxSteps?: number
  /**
   * The shop's objective (P30d): per session, a weight per position; a case counts as much as
   * its target's weight (each epoch draws its cases in proportion, with replacement). Absent, or
   * all equal: every case once per epoch, as without.
   */
  weights?: readonly Float32Array[]
  /** Called after each step; when the run ends `diverged`, the steps reported were undone. */
  onStep?: (progress: LocalStepProgress) => void
}

/**
 * `done`: every planned step ran; `max-steps` / `aborted`: stopped early, the steps so far are
 * kept; `diverged`: a loss or weight was not finite (or absurdly large) and the weights are back
 * to what they were before the run; `busy`: another run on this trainer is in progress.
 */
export type LocalTrainingStatus = 'done' | 'max-steps' | 'aborted' | 'diverged' | 'busy'

export interface LocalTrainingResult {
  status: LocalTrainingStatus
  /** Steps whose updates the model now holds (0 after `diverged`). */
  steps: number
  slices: number
  cases: number
  /** Mean loss of the last step run (after `diverged`, of the offending one); NaN if none ran. */
  lastLoss: number
  elapsedMs: number
  /** The weights differ from before the run: snapshots such as the item table must be rebuilt. */
  changed: boolean
}

export interface LocalTrainer {
  /** Fine-tunes the model in place on `sessions` (item indices, oldest session first). */
  train(sessions: readonly Int32Array[], run?: LocalRunOptions): Promise<LocalTrainingResult>
}

/**
 * Weights further from zero than this count as diverged: with normalised vectors a blow-up can
 * saturate every activation and keep the loss finite while the weights grow without bound.
 */
const MAX_ABS_WEIGHT = 1e4

/**
 * A fine-tuner for `model`. Each run has its own Adam state, disposed when the run ends; the
 * sampled softmax draws uniform negatives, since a device knows no global popularity.
 * @example
 * const trainer = createLocalTrainer(model)
 * const result = await trainer.train(sessions, { signal, onStep: (p) => plot(p.step, p.loss) })
 * if (result.changed) rebuildItemTable()
 */
export function createLocalTrainer(
  model: GruModel,
  options: LocalTrainerOptions = {},
): LocalTrainer {
  // An explicit `undefined` (an optional setting passed through) keeps the default.
  const given = Object.entries(options).filter(([, value]) => value !== undefined)
  const settings = { ...DEFAULT_LOCAL_TRAINER_OPTIONS, ...Object.fromEntries(given) }
  checkOptions(settings)
  const { nItems, maxLen } = model.config
  if (settings.negativeRows) checkItems([settings.negativeRows], nItems)
  const random = createRandom(settings.seed)
  // All-equal counts make the popularity sampler uniform, and its logQ correction a constant.
  const sampler = settings.negativeRows
    ? createSetSampler(settings.negativeRows, settings.seed + 1)
    : createPopularitySampler(new Int32Array(nItems).fill(1), { seed: settings.seed + 1 })
  let running = false
  let runIndex = 0

  return {
    async train(sessions, run = {}) {
      if (running) return emptyResult('busy', 0, 0)
      running = true
      try {
        checkItems(sessions, nItems)
        const cases = expandPrefixes(sessions as Int32Array[], { maxPrefixLen: maxLen }).slice(
          -settings.maxCases,
        )
        const weights = run.weights && caseWeights(sessions, run.weights)
        return await trainOnCases(model, cases, settings, sampler, random, runIndex++, {
          ...run,
          caseWeights: weights?.slice(-settings.maxCases),
        })
      } finally {
        running = false
      }
    },
  }
}

/**
 * The trainer of a federated update (P7): plain SGD, so that an update's size follows its
 * gradients and averaging means something; the session's own next items are never one
 * another's negatives; and a seed of its own, or every device would draw the same negatives and
 * dropout masks, and their average would push those same items down in every round.
 */
export function createUpdateTrainer(
  model: GruModel,
  training: LocalTrainerOptions = {},
  extra: Pick<LocalTrainerOptions, 'negativeRows'> = {},
): LocalTrainer {
  return createLocalTrainer(model, {
    ...training,
    seed:
      training.seed ?? globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! % 1_000_000_007,
    trainable: 'all',
    optimizer: 'sgd',
    inBatchNegatives: false,
    ...extra,
  })
}

/**
 * Each case's weight, in expandPrefixes' order: its target's (position k ≥ 1 of its session).
 * Null when they are all equal: weighting would change nothing but the draw.
 */
export function caseWeights(
  sessions: readonly Int32Array[],
  weights: readonly Float32Array[],
): Float64Array | null {
  if (weights.length !== sessions.length) throw new RangeError('expected a weight row per session')
  const out: number[] = []
  sessions.forEach((session, s) => {
    const row = weights[s]!
    if (row.length !== session.length) throw new RangeError(`expected ${session.length} weights for session ${s}`) // prettier-ignore
    for (let k = 1; k < session.length; k++) {
      if (!(row[k]! > 0 && Number.isFinite(row[k]!))) throw new RangeError(`expected positive weights, got ${row[k]}`) // prettier-ignore
      out.push(row[k]!)
    }
  })
  return out.every((w) => w === out[0]) ? null : Float64Array.from(out)
}

/** `n` indices drawn in proportion to `weights`, with replacement (cumulative sums, bisection). */
function drawWeighted(weights: Float64Array, n: number, random: () => number): number[] {
  const cumulative = new Float64Array(weights.length)
  let total = 0
  weights.forEach((w, i) => (cumulative[i] = total += w))
  return Array.from({ length: n }, () => {
    const u = random() * total
    let lo = 0
    let hi = weights.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cumulative[mid]! > u) hi = mid
      else lo = mid + 1
    }
    return lo
  })
}

async function trainOnCases(
  model: GruModel,
  cases: PrefixCase[],
  settings: LocalTrainerSettings,
  sampler: NegativeSampler,
  random: () => number,
  runIndex: number,
  run: LocalRunOptions & { caseWeights?: Float64Array | null },
): Promise<LocalTrainingResult> {
  const started = performance.now()
  const batchesPerEpoch = Math.ceil(cases.length / settings.batchSize)
  const maxSteps = run.maxSteps ?? Infinity
  if (!(maxSteps >= 0)) throw new RangeError(`expected maxSteps ≥ 0, got ${run.maxSteps}`)
  const steps = Math.min(batchesPerEpoch * settings.epochs, maxSteps)
  if (steps === 0 || run.signal?.aborted) {
    const status = run.signal?.aborted ? 'aborted' : steps < batchesPerEpoch ? 'max-steps' : 'done'
    return emptyResult(status, cases.length, performance.now() - started)
  }

  const variables = [...model.variables.values()]
  let trainer: Trainer | undefined
  let status: LocalTrainingStatus = 'done'
  let step = 0
  let slice = 1
  let lastLoss = NaN
  try {
    trainer = createTrainer(trainableView(model, settings.trainable), {
      learningRate: settings.learningRate,
      optimizer: settings.optimizer,
      inBatchNegatives: settings.inBatchNegatives,
      denseLearningRate: settings.denseLearningRate,
      loss: 'sampled',
      sampler,
      negatives: settings.negatives,
      seed: settings.seed * 7919 + runIndex,
      // A run touches a few thousand of the catalogue's rows; dense Adam would walk all of them.
      // Not on WebGL: its ScatterNd shader loops over every update for every output element
      // (tfjs-backend-webgl 4.22 scatter_gpu.js), so adding the rows back costs rows × table,
      // while a GPU runs dense Adam's elementwise passes in parallel anyway.
      sparseItems: tf.getBackend() !== 'webgl',
      // A diverged or failed run is undone: the weights stay as they were before it.
      undoable: true,
    })
    let order = cases.slice()
    let sliceStart = performance.now()
    training: for (let epoch = 1; step < steps; epoch++) {
      if (run.caseWeights) {
        order = drawWeighted(run.caseWeights, cases.length, random).map((i) => cases[i]!)
      } else shuffleInPlace(order, random)
      for (let first = 0; first < order.length && step < steps; first += settings.batchSize) {
        if (performance.now() - sliceStart >= settings.sliceMs) {
          await yieldToEventLoop()
          slice++
          sliceStart = performance.now()
        }
        if (run.signal?.aborted) {
          status = 'aborted'
          break training
        }
        const batch = order.slice(first, first + settings.batchSize)
        const loss = await trainer.step(
          encodeSessionBatch(
            batch.map((c) => c.prefix),
            model.config.maxLen,
          ),
          Int32Array.from(batch, (c) => c.target),
        )
        step++
        lastLoss = loss
        if (!Number.isFinite(loss)) {
          status = 'diverged'
          break training
        }
        run.onStep?.({ step, steps, epoch, slice, loss })
      }
    }
    if (status !== 'diverged' && !(await weightsAreSane(variables))) status = 'diverged'
    if (status === 'diverged') trainer.undo()
  } catch (error) {
    // A failed step (a lost GPU device, exhausted memory) may leave some variables updated.
    trainer?.undo()
    throw error
  } finally {
    trainer?.dispose()
  }
  if (status === 'done' && step < batchesPerEpoch * settings.epochs) status = 'max-steps'
  const kept = status === 'diverged' ? 0 : step
  return {
    status,
    steps: kept,
    slices: slice,
    cases: cases.length,
    lastLoss,
    elapsedMs: performance.now() - started,
    changed: kept > 0,
  }
}

/**
 * The model as the trainer should see it: createTrainer updates exactly `model.variables` and
 * gathers the sampled rows from its `item_embedding`, which every view therefore keeps.
 */
function trainableView(model: GruModel, trainable: 'all' | 'items'): GruModel {
  if (trainable === 'all') return model
  const items = model.variables.get('item_embedding')!
  return { ...model, variables: new Map([['item_embedding', items]]) }
}

/** Every weight finite and within MAX_ABS_WEIGHT, read back in one asynchronous transfer. */
async function weightsAreSane(variables: tf.Variable[]): Promise<boolean> {
  // Sums propagate NaN and Inf on every backend, where max may skip a NaN.
  const summary = tf.tidy(() =>
    tf.stack(variables.flatMap((v) => [tf.sum(tf.abs(v)), tf.max(tf.abs(v))])),
  )
  const values = await summary.data()
  summary.dispose()
  for (let i = 0; i < values.length; i += 2) {
    if (!Number.isFinite(values[i]!) || !(values[i + 1]! <= MAX_ABS_WEIGHT)) return false
  }
  return true
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0))
}

function emptyResult(
  status: LocalTrainingStatus,
  cases: number,
  elapsedMs: number,
): LocalTrainingResult {
  return { status, steps: 0, slices: 0, cases, lastLoss: NaN, elapsedMs, changed: false }
}

function checkOptions(settings: LocalTrainerSettings): void {
  if (!(settings.learningRate > 0 && Number.isFinite(settings.learningRate))) {
    throw new RangeError(`expected learningRate > 0, got ${settings.learningRate}`)
  }
  // 0 is allowed: one step per slice.
  if (!(settings.sliceMs >= 0 && Number.isFinite(settings.sliceMs))) {
    throw new RangeError(`expected sliceMs ≥ 0, got ${settings.sliceMs}`)
  }
  if (settings.trainable !== 'all' && settings.trainable !== 'items') {
    throw new RangeError(`expected trainable to be all or items, got ${settings.trainable}`)
  }
  const counts: Array<'batchSize' | 'negatives' | 'epochs' | 'maxCases'> = [
    'batchSize',
    'negatives',
    'epochs',
    'maxCases',
  ]
  for (const name of counts) {
    if (!(Number.isInteger(settings[name]) && settings[name] >= 1)) {
      throw new RangeError(`expected ${name} to be a positive integer, got ${settings[name]}`)
    }
  }
}

// Sessions come from the event store, already mapped to model rows; an index out of range would
// make the embedding lookup read another row (or garbage) on some backends rather than fail.
function checkItems(sessions: readonly Int32Array[], nItems: number): void {
  sessions.forEach((session, s) => {
    for (const item of session) {
      if (!(item >= 0 && item < nItems)) {
        throw new RangeError(`expected item indices in [0, ${nItems}), got ${item} in session ${s}`)
      }
    }
  })
}
