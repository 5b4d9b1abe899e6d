// The model's weights in the two groups the federation treats apart (PROTOCOL.md P29): the
// dense weights are every tensor but the item table, flattened in file order (describeWeights
// order), and the table is nItems rows of embedDim values.
import type { WeightsFile } from './weights-codec'

export const TABLE_NAME = 'item_embedding'

/** The model's two parameter groups' sizes. */
export interface ModelShape {
  /** Dense (non-table) parameters: `P`. */
  denseSize: number
  nItems: number
  embedDim: number
}

/** The dense weights (every tensor but the table, in file order) and the table, flat. */
export function splitWeights(file: WeightsFile): {
  dense: Float32Array
  table: Float32Array
  shape: ModelShape
} {
  const table = file.tensors.find((t) => t.name === TABLE_NAME)
  if (!table || table.shape.length !== 2) {
    throw new Error(`expected a 2-D ${TABLE_NAME} tensor in the model`)
  }
  const others = file.tensors.filter((t) => t !== table)
  const dense = new Float32Array(others.reduce((n, t) => n + t.values.length, 0))
  let offset = 0
  for (const t of others) {
    dense.set(t.values, offset)
    offset += t.values.length
  }
  const [nItems, embedDim] = table.shape as [number, number]
  return { dense, table: table.values, shape: { denseSize: dense.length, nItems, embedDim } }
}

/** `file` with its dense weights and table replaced (the inverse of splitWeights). */
export function joinWeights(
  file: WeightsFile,
  dense: Float32Array,
  table: Float32Array,
): WeightsFile {
  let offset = 0
  return {
    ...file,
    tensors: file.tensors.map((t) => {
      if (t.name === TABLE_NAME) return { ...t, values: table }
      const values = dense.slice(offset, offset + t.values.length)
      offset += t.values.length
      return { ...t, values }
    }),
  }
}
