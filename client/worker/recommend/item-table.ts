// The model's item vectors prepared once for inference and shared by recall and rank: normalising
// and transposing 43k rows on every request would cost more than the request itself.
import * as tf from '@tensorflow/tfjs-core'
import type { GruModel } from '../model/gru-model'

export interface ItemTable {
  /** Scoring-side item vectors, transposed: [embedDim, nItems]. */
  readonly transposed: tf.Tensor2D
  dispose(): void
}

/**
 * Snapshots the model's item vectors. [d, nItems] keeps WASM's matMul on its fast path, which
 * transposeA/B flags leave (BRIEF: about 10× slower). The snapshot goes stale when the weights
 * change: build a new one after local fine-tuning or a model update.
 */
export function createItemTable(model: GruModel): ItemTable {
  const transposed = tf.tidy(() => tf.transpose(model.itemVectors())) as tf.Tensor2D
  return { transposed, dispose: () => transposed.dispose() }
}
