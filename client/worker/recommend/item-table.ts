// The worker's one copy of the item table: the model's scoring-side item vectors read back once,
// row-major, shared by recall (exact scan and the neighbour index), ranking and the JS session
// encoder. Before issue 14 the worker held four: the model's variable, a transposed tensor for
// matMul recall, this read-back and the index's cluster-ordered copy (17 MB each for DIGINETICA);
// now the model's own variable (which fine-tuning needs) and this one are all.
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
  const { nItems, embedDim: dim, normalize } = model.config
  // Read the variable as it is and normalise here, not with model.itemVectors(): on the wasm
  // backend its three [nItems, dim] temporaries would grow WASM memory by 50 MB for
  // DIGINETICA, and WASM memory never shrinks. Same arithmetic as normalizeRows (model/ops.ts).
  const values = (await model.variables.get('item_embedding')!.data()) as Float32Array
  if (normalize) {
    for (let row = 0; row < nItems; row++) {
      const from = row * dim
      let sumSquares = 0
      for (let k = 0; k < dim; k++) sumSquares += values[from + k]! * values[from + k]!
      const scale = 1 / Math.sqrt(sumSquares + 1e-12)
      for (let k = 0; k < dim; k++) values[from + k] = values[from + k]! * scale
    }
  }
  return { nItems, dim, values, encoder: await createSessionEncoder(model, values) }
}
