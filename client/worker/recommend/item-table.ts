// The model's item vectors prepared once for inference and shared by recall and rank: normalising
// and transposing 43k rows on every request would cost more than the request itself.
import * as tf from '@tensorflow/tfjs-core'
import type { GruModel } from '../../../model/gru-model'
import { createSessionEncoder, type SessionEncoder } from '../../../model/gru-inference'

export interface ItemTable {
  /** Scoring-side item vectors, transposed: [embedDim, nItems]. */
  readonly transposed: tf.Tensor2D
  /**
   * The same numbers read back once, row-major (value k of item i at i · embedDim + k): a
   * candidate's vector is then 400 contiguous bytes, for scoring a few hundred of them in JS.
   */
  values(): Promise<Float32Array>
  /** The session encoder in JS over the same snapshot (model/gru-inference.ts). */
  encoder(): Promise<SessionEncoder>
  dispose(): void
}

/**
 * Snapshots the model's item vectors. [d, nItems] keeps WASM's matMul on its fast path, which
 * transposeA/B flags leave (about 10× slower on tfjs-backend-wasm). The snapshot goes stale when the weights
 * change: build a new one after local fine-tuning or a model update.
 */
export function createItemTable(model: GruModel): ItemTable {
  const transposed = tf.tidy(() => tf.transpose(model.itemVectors())) as tf.Tensor2D
  let values: Promise<Float32Array> | undefined
  let encoder: Promise<SessionEncoder> | undefined
  // Read back on first use only: a table that only serves trending lists never pays for it.
  const readValues = () => (values ??= readRows(model))
  return {
    transposed,
    values: readValues,
    encoder: () => (encoder ??= readValues().then((rows) => createSessionEncoder(model, rows))),
    dispose: () => transposed.dispose(),
  }
}

async function readRows(model: GruModel): Promise<Float32Array> {
  const rows = tf.tidy(() => model.itemVectors())
  try {
    return (await rows.data()) as Float32Array
  } finally {
    rows.dispose()
  }
}
