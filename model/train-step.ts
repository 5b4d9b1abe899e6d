// One optimiser step of the session model, shared by the offline trainer (Node) and on-device
// fine-tuning (worker). Everything allocated here is released before the promise resolves.
import * as tf from '@tensorflow/tfjs-core'
import type { GruModel, SessionBatch } from './gru-model'
import type { NegativeSampler } from './negative-sampler'
import { gatherRows, normalizeRows, softmaxCrossEntropy } from './ops'
import { registerTrainingGradients } from './gradients'

export type LossKind = 'full' | 'sampled'

export interface TrainerOptions {
  learningRate: number
  /**
   * `adam` (default). `sgd`: plain gradient steps, whose size follows the gradient's. A
   * federated update needs that: Adam's first steps from fresh moments move every touched
   * weight by ±learningRate whatever its gradient (m̂/√v̂ = sign g), so averaged updates carry
   * signs, not magnitudes (PROTOCOL.md P7).
   */
  optimizer?: 'adam' | 'sgd'
  /**
   * Sampled loss: whether the batch's other targets are negatives too (default true). In a batch
   * drawn from one shopper's session they are that session's own items, the most relevant ones
   * there are; a federated update must not learn to push them down (PROTOCOL.md P7).
   */
  inBatchNegatives?: boolean
  /**
   * SGD only: the rate of every weight but the item table (default: learningRate). Plain SGD
   * needs two: on YooChoose's validation split one epoch over 1,000 sessions at 0.5 took
   * Recall@20 from 26.9 to 31.0 when only the item rows moved, and to 3.0 when every weight did.
   */
  denseLearningRate?: number
  loss: LossKind
  /** Required for the sampled loss: extra popularity-drawn negatives per batch. */
  sampler?: NegativeSampler
  negatives?: number
  seed?: number
  /**
   * Sampled loss only: differentiate just the item rows a step reads and update the table with
   * a row-wise Adam (createRowAdam; the same result as dense Adam), so a step's cost follows the
   * rows it touches rather than the catalogue. For short runs such as on-device fine-tuning;
   * over a long run every row gets touched and the dense path is as fast.
   */
  sparseItems?: boolean
  /**
   * Keep what `undo()` needs: a copy of every dense weight and, on the sparse path, each item
   * row as it was before its first update (not a copy of the whole table).
   */
  undoable?: boolean
}

export interface Trainer {
  /** One Adam step on `batch` → `targets`; resolves to the batch's mean loss. */
  step(batch: SessionBatch, targets: Int32Array): Promise<number>
  setLearningRate(rate: number): void
  /** Puts every weight back as it was when the trainer was made (needs `undoable`). */
  undo(): void
  dispose(): void
}

/** tfjs' float32 epsilon (EPSILON_FLOAT32), which cpu, wasm and webgpu already use. */
export const ADAM_EPSILON = 1e-7

export function createTrainer(model: GruModel, options: TrainerOptions): Trainer {
  registerTrainingGradients()
  if (options.loss === 'sampled' && !options.sampler) {
    throw new Error('the sampled loss needs a negative sampler')
  }
  if (options.sparseItems && options.loss !== 'sampled') {
    throw new Error('sparse item updates need the sampled loss: the full one scores every row')
  }
  // Adam's default epsilon is the active backend's: 1e-7 on cpu, wasm and webgpu, but 1e-4 on
  // a float32 WebGL (tfjs-backend-webgl 4.22's floatPrecision() reports 16 whenever float32
  // rendering is on; tensorflow/tfjs#6980), which shrinks every step whose gradient is under
  // ~1e-4. Pinning it keeps one training step the same on every backend.
  const sgd = options.optimizer === 'sgd'
  const denseRate = (rate: number) =>
    sgd && options.denseLearningRate !== undefined
      ? (rate * options.denseLearningRate) / options.learningRate
      : rate
  const optimizer = sgd
    ? tf.train.sgd(denseRate(options.learningRate))
    : tf.train.adam(options.learningRate, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON)
  const table = model.variables.get('item_embedding')!
  const sparse = options.sparseItems === true && table !== undefined
  const variables = [...model.variables.values()]
  const denseVariables = sparse ? variables.filter((v) => v !== table) : variables
  const rowAdam = sparse
    ? sgd
      ? createRowSgd(table, options.learningRate)
      : createRowAdam(table, options.learningRate)
    : undefined
  // Dense path with a separate rate for the table (the sparse path's rowAdam carries it).
  const tableOptimizer =
    sgd && !sparse && options.denseLearningRate !== undefined && table !== undefined
      ? tf.train.sgd(options.learningRate)
      : undefined
  let stepIndex = 0
  const seed = options.seed ?? 1
  const inBatchNegatives = options.inBatchNegatives ?? true
  // Clones share the variables' current buffers: optimizers assign new tensors on every step and
  // never write in place, so this costs no copy and stays the state before the first step.
  const denseBefore = options.undoable ? denseVariables.map((v) => tf.clone(v)) : []
  const originals = options.undoable && sparse ? createRowOriginals(table) : undefined

  /**
   * The batch's loss; item rows are read from `rows.table` at positions `rows.index(id)`, which
   * is the item embedding itself (dense) or the rows this step touches (sparse).
   */
  function lossFor(batch: SessionBatch, targets: Int32Array, rows?: StepRows): tf.Scalar {
    const sessions = model.encode(rows ? { ...batch, ids: rows.local(batch.ids) } : batch, {
      training: true,
      seed: seed * 100_003 + stepIndex * 2,
      itemRows: rows?.table as tf.Tensor2D | undefined,
    })
    const targetTensor = tf.tensor1d(targets, 'int32')
    if (options.loss === 'full') {
      return softmaxCrossEntropy(model.logits(sessions, model.itemVectors()), targetTensor)
    }
    const candidates = rows ? rows.candidates : candidatesFor(targets, drawNegatives())
    const vectors = gatherRows(
      (rows?.table ?? table) as tf.Tensor2D,
      tf.tensor1d(rows ? rows.local(candidates) : candidates, 'int32'),
    )
    return sampledSoftmaxLoss(model, sessions, targets, candidates, vectors, {
      sampler: options.sampler!,
      inBatchNegatives,
    })
  }

  function drawNegatives(): Int32Array {
    return options.sampler!.sample(options.negatives ?? 1024)
  }

  /** The dense path with two SGD rates: the table's, and every other weight's. */
  function splitRateStep(batch: SessionBatch, targets: Int32Array): tf.Scalar {
    const { value, grads } = tf.variableGrads(() => lossFor(batch, targets), variables)
    tableOptimizer!.applyGradients({ [table.name]: grads[table.name]! })
    optimizer.applyGradients(
      variables.filter((v) => v !== table).map((v) => ({ name: v.name, tensor: grads[v.name]! })),
    )
    tf.dispose(grads)
    return value
  }

  async function sparseStep(batch: SessionBatch, targets: Int32Array): Promise<tf.Scalar> {
    const rows = gatherStepRows(table, batch.ids, candidatesFor(targets, drawNegatives()))
    originals?.keep(rows.ids)
    try {
      const { value, grads } = tf.variableGrads(
        () => lossFor(batch, targets, rows),
        [rows.table, ...denseVariables],
      )
      rowAdam!.apply(rows.ids, grads[rows.table.name] as tf.Tensor2D)
      if (denseVariables.length > 0) {
        optimizer.applyGradients(
          denseVariables.map((v) => ({ name: v.name, tensor: grads[v.name]! })),
        )
      }
      tf.dispose(grads)
      return value
    } finally {
      rows.table.dispose()
    }
  }

  return {
    async step(batch, targets) {
      const cost = sparse
        ? await sparseStep(batch, targets)
        : tableOptimizer
          ? splitRateStep(batch, targets)
          : optimizer.minimize(() => lossFor(batch, targets), true, variables)!
      stepIndex++
      const [value] = await cost.data()
      cost.dispose()
      return value!
    },
    setLearningRate(rate) {
      // SGDOptimizer keeps the rate in a scalar its setter replaces; AdamOptimizer reads this
      // field on every step, so the moments survive a schedule change.
      // (tfjs-core 4.22 exports the SGDOptimizer type, not the class: no instanceof.)
      if (sgd)
        (optimizer as unknown as { setLearningRate(r: number): void }).setLearningRate(
          denseRate(rate),
        )
      else (optimizer as unknown as { learningRate: number }).learningRate = rate
      tableOptimizer?.setLearningRate(rate)
      rowAdam?.setLearningRate(rate)
    },
    undo() {
      if (!options.undoable) throw new Error('undo() needs a trainer made with undoable: true')
      denseVariables.forEach((v, i) => v.assign(denseBefore[i]!))
      originals?.restore()
    },
    dispose() {
      optimizer.dispose()
      tableOptimizer?.dispose()
      rowAdam?.dispose()
      tf.dispose(denseBefore)
      originals?.dispose()
    },
  }
}

/** A sampled step's candidates: the batch's targets, then the drawn negatives. */
function candidatesFor(targets: Int32Array, negatives: Int32Array): Int32Array {
  const candidates = new Int32Array(targets.length + negatives.length)
  candidates.set(targets)
  candidates.set(negatives, targets.length)
  return candidates
}

/**
 * Sampled softmax over in-batch targets plus popularity negatives, logQ-corrected; row i's label
 * is column i, and other columns holding that same item are masked (accidental hits).
 * `vectors` are the candidates' rows of the item table, [candidates, d], not yet normalised.
 */
function sampledSoftmaxLoss(
  model: GruModel,
  sessions: tf.Tensor2D,
  targets: Int32Array,
  candidates: Int32Array,
  vectors: tf.Tensor2D,
  options: { sampler: NegativeSampler; inBatchNegatives: boolean },
): tf.Scalar {
  const normalised = model.config.normalize ? normalizeRows(vectors) : vectors
  const correction = new Float32Array(targets.length * candidates.length)
  const negatives = candidates.length - targets.length
  const logQ = Float32Array.from(candidates, (item) =>
    options.sampler.logExpectedCount(item, targets.length, negatives),
  )
  for (let i = 0; i < targets.length; i++) {
    const row = i * candidates.length
    for (let j = 0; j < candidates.length; j++) {
      const masked =
        j !== i &&
        (candidates[j] === targets[i] || (!options.inBatchNegatives && j < targets.length))
      correction[row + j] = masked ? -1e4 : -logQ[j]!
    }
  }
  const logits = tf.add(
    model.logits(sessions, normalised),
    tf.tensor2d(correction, [targets.length, candidates.length]),
  )
  const labels = tf.range(0, targets.length, 1, 'int32') as tf.Tensor1D
  return softmaxCrossEntropy(logits as tf.Tensor2D, labels)
}

/** The item rows one sparse step reads, copied out of the table as a trainable variable. */
interface StepRows {
  /** Distinct model rows, in first-seen order. */
  ids: Int32Array
  /** [ids.length, d], differentiable; the step's gradient for the table is its gradient. */
  table: tf.Variable
  candidates: Int32Array
  /** Model rows → positions in `table`. */
  local(rows: Int32Array): Int32Array
}

let stepRowsCounter = 0

/** The distinct item rows a sampled step reads (session items and candidates), first seen first. */
interface StepPositions {
  ids: Int32Array
  /** Model rows → positions in `ids`. */
  local(rows: Int32Array): Int32Array
}

function stepPositions(sessionIds: Int32Array, candidates: Int32Array): StepPositions {
  const position = new Map<number, number>()
  for (const list of [sessionIds, candidates]) {
    for (const id of list) if (!position.has(id)) position.set(id, position.size)
  }
  return {
    ids: Int32Array.from(position.keys()),
    local: (rows) => Int32Array.from(rows, (id) => position.get(id)!),
  }
}

function gatherStepRows(
  itemTable: tf.Variable,
  sessionIds: Int32Array,
  candidates: Int32Array,
): StepRows {
  const { ids, local } = stepPositions(sessionIds, candidates)
  const table = tf.tidy(() =>
    tf.variable(
      tf.gather(itemTable, tf.tensor1d(ids, 'int32')),
      true,
      `step_rows#${stepRowsCounter++}`,
    ),
  )
  return { ids, table, candidates, local }
}

/** Plain gradient steps on the rows a step touched (the sparse path's SGD). */
function createRowSgd(table: tf.Variable, learningRate: number): RowAdam {
  let rate = learningRate
  return {
    apply(ids, grads) {
      tf.tidy(() => {
        addToRows(table, ids, tf.mul(grads, -rate) as tf.Tensor2D)
      })
    },
    setLearningRate(next) {
      rate = next
    },
    dispose() {},
  }
}

export const ADAM_BETA1 = 0.9
export const ADAM_BETA2 = 0.999

interface RowAdam {
  /** One Adam step for `table`, whose gradient is `grads` on rows `ids` and zero elsewhere. */
  apply(ids: Int32Array, grads: tf.Tensor2D): void
  setLearningRate(rate: number): void
  dispose(): void
}

/**
 * tf.train.adam for an embedding table whose gradient touches few rows per step, with the same
 * result. A row that has never had a gradient has zero moments, so dense Adam moves it by
 * 0 / (0 + ε) = 0: updating only the rows seen so far (their moments keep decaying, as dense
 * Adam's do) is exact, and costs O(rows seen · d) plus two passes over the table per step
 * (scatter the delta, add it) instead of a dozen.
 */
export function createRowAdam(table: tf.Variable, learningRate: number): RowAdam {
  const [, d] = table.shape as [number, number]
  const slotOf = new Map<number, number>()
  let seen: Int32Array<ArrayBuffer> = new Int32Array(64)
  let first: tf.Tensor2D | undefined // [slots, d]
  let second: tf.Tensor2D | undefined
  let rate = learningRate
  let step = 0

  return {
    apply(ids, grads) {
      step++
      for (const id of ids) {
        if (slotOf.has(id)) continue
        if (slotOf.size === seen.length) seen = growInt32(seen)
        seen[slotOf.size] = id
        slotOf.set(id, slotOf.size)
      }
      const slots = slotOf.size
      const [nextFirst, nextSecond] = tf.tidy(() => {
        const at = tf.tensor2d(
          Int32Array.from(ids, (id) => slotOf.get(id)!),
          [ids.length, 1],
          'int32',
        )
        const g = tf.scatterND(at, grads, [slots, d]) as tf.Tensor2D
        const m = tf.add(tf.mul(padRows(first, slots, d), ADAM_BETA1), tf.mul(g, 1 - ADAM_BETA1))
        const v = tf.add(
          tf.mul(padRows(second, slots, d), ADAM_BETA2),
          tf.mul(tf.square(g), 1 - ADAM_BETA2),
        )
        // The order of tf.train.adam's arithmetic, so that both agree to the last bits we can.
        const mHat = tf.div(m, 1 - ADAM_BETA1 ** step)
        const vHat = tf.div(v, 1 - ADAM_BETA2 ** step)
        const delta = tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), ADAM_EPSILON)), -rate)
        addToRows(table, seen.slice(0, slots), delta as tf.Tensor2D)
        return [m as tf.Tensor2D, v as tf.Tensor2D]
      })
      tf.dispose([first, second])
      first = nextFirst
      second = nextSecond
    },
    setLearningRate(next) {
      rate = next
    },
    dispose() {
      tf.dispose([first, second])
      first = second = undefined
    },
  }
}

/**
 * table[ids] += delta, as one new table with only those rows rewritten. Adding a dense scattered
 * delta held two more table-sized buffers a step, and WASM memory never shrinks: with it (and a
 * clone of the table for undo) one fine-tuning run left the worker 98.0 MB of WASM memory for
 * DIGINETICA, 80.5 MB without (BENCHMARKS.md, "Worker memory"). Not on cpu:
 * tfjs-backend-cpu 4.22's TensorScatterUpdate writes into its input's buffer, which every tensor
 * sharing it would see; there the dense delta stays (JS memory is collected). Either way undo
 * keeps the rows it needs (createRowOriginals), never a clone of the table.
 */
function addToRows(table: tf.Variable, ids: Int32Array, delta: tf.Tensor2D): void {
  tf.tidy(() => {
    const at = tf.tensor1d(ids, 'int32')
    const rowsAt = tf.expandDims(at, 1)
    table.assign(
      tf.getBackend() === 'cpu'
        ? tf.add(table, tf.scatterND(rowsAt, delta, table.shape))
        : tf.tensorScatterUpdate(table, rowsAt, tf.add(tf.gather(table, at), delta)),
    )
  })
}

/** Each item row as it was before its first update, to put back (the sparse path's undo). */
function createRowOriginals(table: tf.Variable) {
  const kept = new Set<number>()
  const parts: Array<{ ids: Int32Array; rows: tf.Tensor2D }> = []
  return {
    /** Call before a step updates `ids`: keeps those not kept yet. */
    keep(ids: Int32Array) {
      const fresh = Int32Array.from(new Set(ids)).filter((id) => !kept.has(id))
      if (fresh.length === 0) return
      fresh.forEach((id) => kept.add(id))
      const rows = tf.tidy(() => tf.gather(table, tf.tensor1d(fresh, 'int32')) as tf.Tensor2D)
      parts.push({ ids: fresh, rows })
    },
    restore() {
      // Written over, never added back: the rows to replace may be NaN after a diverged run.
      for (const { ids, rows } of parts) {
        tf.tidy(() => {
          const at = tf.tensor2d(ids, [ids.length, 1], 'int32')
          const kept = tf.scatterND(at, tf.ones([ids.length, 1], 'bool'), [table.shape[0], 1])
          table.assign(tf.where(kept, tf.scatterND(at, rows, table.shape), table))
        })
      }
    },
    dispose() {
      tf.dispose(parts.map((part) => part.rows))
      parts.length = 0
      kept.clear()
    },
  }
}

function padRows(moments: tf.Tensor2D | undefined, slots: number, d: number): tf.Tensor2D {
  const have = moments?.shape[0] ?? 0
  if (have === slots) return moments!
  const zeros = tf.zeros([slots - have, d]) as tf.Tensor2D
  return moments ? tf.concat([moments, zeros]) : zeros
}

function growInt32(array: Int32Array): Int32Array<ArrayBuffer> {
  const grown = new Int32Array(array.length * 2)
  grown.set(array)
  return grown
}
