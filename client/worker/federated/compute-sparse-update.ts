// The device's half of a sparse round (PROTOCOL.md P29): train a copy of the *global* weights on
// the shopper's sessions and return the changes of the rows it viewed and of the dense window its
// slice names, clipped and in fixed point. Only the viewed rows and the release's public negatives
// take part in training, so the copy holds just those rows: a device's work follows its session,
// not the catalogue. How the contribution leaves the device (secret shares to two servers, or in
// the clear in the simulation) is the channel's business.
import { splitWeights, TABLE_NAME } from '../../../shared/federation-layout'
import {
  denseWindowStart,
  toFixed,
  type SparseContribution,
  type SparseLayout,
} from '../../../shared/sparse-update'
import type { WeightsFile } from '../../../shared/weights-codec'
import { exportModelWeights, importModelWeights } from '../../../model/model-weights'
import { createUpdateTrainer, type LocalTrainerOptions } from '../../../model/train-local'

/** What the manifest and the upload token tell a device about a sparse round. */
export interface SparsePlan {
  /** The token's slice: which dense window the update carries. */
  slice: number
  layout: SparseLayout
  /** The release's public negatives (layout.negativeRows of them): the rows a device pushes down. */
  negativeRows: Int32Array
  /** P11: the L2 bound of the rows and window sent. */
  clipNorm: number
  training?: LocalTrainerOptions
}

export interface SparseUpdate {
  contribution: SparseContribution
  /** L2 norm of what is sent, before clipping. */
  norm: number
  clipped: boolean
  /** Distinct rows viewed; more than `maxRows` means the oldest were left out. */
  viewed: number
}

/**
 * The contribution of `sessions` (model rows, oldest session first) to the release of `global`,
 * or null when there is nothing to learn from or the run diverged.
 */
export async function computeSparseUpdate(
  global: WeightsFile,
  sessions: readonly Int32Array[],
  plan: SparsePlan,
): Promise<SparseUpdate | null> {
  const start = splitWeights(global)
  const { nItems, embedDim: d, denseSize } = start.shape
  // Viewed rows, most recently viewed last; then the negatives the shopper did not view.
  const recency = new Map<number, true>()
  for (const session of sessions)
    for (const item of session) {
      if (!(item >= 0 && item < nItems))
        throw new RangeError(`expected item indices in [0, ${nItems}), got ${item}`)
      recency.delete(item)
      recency.set(item, true)
    }
  const viewed = Int32Array.from(recency.keys())
  if (plan.negativeRows.length !== plan.layout.negativeRows)
    throw new RangeError(
      `expected ${plan.layout.negativeRows} public negatives, got ${plan.negativeRows.length}`,
    )
  // The manifest's list: a duplicate or an id outside the table would misplace changes.
  const distinct = new Set(plan.negativeRows)
  if (distinct.size !== plan.negativeRows.length)
    throw new RangeError('expected distinct public negatives, got a row twice')
  for (const row of distinct)
    if (!(row >= 0 && row < nItems))
      throw new RangeError(`expected public negatives in [0, ${nItems}), got ${row}`)
  const negatives = plan.negativeRows.filter((row) => !recency.has(row))
  if (viewed.length === 0 || negatives.length === 0) return null
  const rows = new Int32Array(viewed.length + negatives.length)
  rows.set(viewed)
  rows.set(negatives, viewed.length)
  const local = new Map(Array.from(rows, (row, i) => [row, i]))

  const model = importModelWeights(withTableRows(global, start.table, rows, d))
  try {
    const trainer = createUpdateTrainer(model, plan.training, {
      negativeRows: Int32Array.from(negatives, (_, i) => viewed.length + i),
    })
    const result = await trainer.train(
      sessions.map((s) => Int32Array.from(s, (item) => local.get(item)!)),
    )
    if (!result.changed) return null
    const trained = splitWeights(await exportModelWeights(model))

    const sent = viewed.subarray(Math.max(0, viewed.length - plan.layout.maxRows))
    const D = plan.layout.denseCoordinates
    const values = new Float64Array(sent.length * d + D + plan.negativeRows.length * d)
    for (let k = 0; k < sent.length; k++) {
      const at = local.get(sent[k]!)! * d
      const from = sent[k]! * d
      for (let j = 0; j < d; j++)
        values[k * d + j] = trained.table[at + j]! - start.table[from + j]!
    }
    const denseStart = denseWindowStart(plan.slice, plan.layout, start.shape)
    for (let k = 0; k < plan.layout.denseCoordinates; k++) {
      const at = (denseStart + k) % denseSize
      values[sent.length * d + k] = trained.dense[at]! - start.dense[at]!
    }
    plan.negativeRows.forEach((row, k) => {
      if (recency.has(row)) return
      const at = local.get(row)! * d
      const into = sent.length * d + D + k * d
      for (let j = 0; j < d; j++)
        values[into + j] = trained.table[at + j]! - start.table[row * d + j]!
    })
    let squares = 0
    for (const v of values) squares += v * v
    const norm = Math.sqrt(squares)
    const clipped = norm > plan.clipNorm
    const scale = clipped ? plan.clipNorm / norm : 1
    const fixed = Int32Array.from(values, (v) => toFixed(v * scale))
    return {
      contribution: {
        rows: Int32Array.from(sent),
        rowValues: fixed.slice(0, sent.length * d),
        denseStart,
        dense: fixed.slice(sent.length * d, sent.length * d + D),
        negatives: fixed.slice(sent.length * d + D),
      },
      norm,
      clipped,
      viewed: viewed.length,
    }
  } finally {
    model.dispose()
  }
}

/** `file` with its item table cut down to `rows` (in that order); everything else shared. */
function withTableRows(
  file: WeightsFile,
  table: Float32Array,
  rows: Int32Array,
  d: number,
): WeightsFile {
  const values = new Float32Array(rows.length * d)
  for (let k = 0; k < rows.length; k++)
    values.set(table.subarray(rows[k]! * d, rows[k]! * d + d), k * d)
  return {
    ...file,
    meta: { ...file.meta, nItems: rows.length },
    tensors: file.tensors.map((t) =>
      t.name === TABLE_NAME ? { ...t, shape: [rows.length, d], values } : t,
    ),
  }
}
