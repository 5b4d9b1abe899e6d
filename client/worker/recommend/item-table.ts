// The worker's one copy of the item table: the model's scoring-side item vectors read back once,
// row-major, shared by recall (exact scan and the neighbour index), ranking and the JS session
// encoder. Before issue 14 the worker held four: the model's variable, a transposed tensor for
// matMul recall, this read-back and the index's cluster-ordered copy (17 MB each for DIGINETICA);
// now the model's own variable (which fine-tuning needs) and this one are all.
import * as tf from '@tensorflow/tfjs-core'
import type { GruModel } from '../../../model/gru-model'
import { createSessionEncoder, type SessionEncoder } from '../../../model/gru-inference'

export interface ItemTable {
  readonly nItems: number
  readonly dim: number
  /**
   * Item vectors as the model scores them (unit length when it normalises), row-major: value k of
   * item i at i · dim + k, so a candidate's vector is one contiguous run.
   */
  readonly values: Float32Array
  /** The session encoder in JS over these same rows (model/gru-inference.ts). */
  readonly encoder: SessionEncoder
}

/**
 * Snapshots the model's item vectors and encoder. The snapshot goes stale when the weights
 * change: read a new one after local fine-tuning or a model update.
 */
export async function readItemTable(model: GruModel): Promise<ItemTable> {
  const { nItems, embedDim: dim } = model.config
  const rows = tf.tidy(() => model.itemVectors())
  let values: Float32Array
  try {
    values = (await rows.data()) as Float32Array
  } finally {
    rows.dispose()
  }
  return { nItems, dim, values, encoder: await createSessionEncoder(model, values) }
}

/** Four running sums: about twice as fast in V8 as one, as the additions no longer wait in line. */
export function dot(
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  dim: number,
): number {
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 0
  let k = 0
  for (; k + 3 < dim; k += 4) {
    s0 += a[aOffset + k]! * b[bOffset + k]!
    s1 += a[aOffset + k + 1]! * b[bOffset + k + 1]!
    s2 += a[aOffset + k + 2]! * b[bOffset + k + 2]!
    s3 += a[aOffset + k + 3]! * b[bOffset + k + 3]!
  }
  for (; k < dim; k++) s0 += a[aOffset + k]! * b[bOffset + k]!
  return s0 + s1 + s2 + s3
}
