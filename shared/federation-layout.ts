// Where an update's values sit in the model (PROTOCOL.md P8), shared by the device that cuts
// them out and the server that adds them back: the dense weights are every tensor but the item
// table, flattened in file order (describeWeights order); slice `s` covers the dense window
// [(s·D) mod P, … + D) and the table rows [(s·R) mod nItems, … + R), both wrapping around.
import type { UpdateLayout } from './update-codec'
import type { WeightsFile } from './weights-codec'

export const TABLE_NAME = 'item_embedding'

/** The model's two parameter groups' sizes. */
export interface ModelShape {
  /** Dense (non-table) parameters: `P`. */
  denseSize: number
  nItems: number
  embedDim: number
}

export interface SliceSpan {
  denseStart: number
  rowStart: number
}

export function sliceSpan(slice: number, layout: UpdateLayout, shape: ModelShape): SliceSpan {
  if (layout.embedDim !== shape.embedDim) {
    throw new RangeError(`expected embedDim ${shape.embedDim}, got ${layout.embedDim}`)
  }
  // A slice longer than its group would cover a coordinate twice.
  if (layout.denseCoordinates > shape.denseSize || layout.sliceRows > shape.nItems) {
    throw new RangeError(
      `expected a slice within the model (D ≤ ${shape.denseSize}, R ≤ ${shape.nItems}), got D=${layout.denseCoordinates} R=${layout.sliceRows}`,
    )
  }
  return {
    denseStart: mulMod(slice, layout.denseCoordinates, shape.denseSize),
    rowStart: mulMod(slice, layout.sliceRows, shape.nItems),
  }
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

/** The values slice `s` carries, cut out of flat dense weights and table (device side). */
export function extractSlice(
  weights: { dense: Float32Array; table: Float32Array },
  slice: number,
  layout: UpdateLayout,
  shape: ModelShape,
): Float32Array {
  const { denseStart, rowStart } = sliceSpan(slice, layout, shape)
  const d = shape.embedDim
  const out = new Float32Array(layout.denseCoordinates + layout.sliceRows * d)
  for (let k = 0; k < layout.denseCoordinates; k++) {
    out[k] = weights.dense[(denseStart + k) % shape.denseSize]!
  }
  for (let r = 0; r < layout.sliceRows; r++) {
    const row = (rowStart + r) % shape.nItems
    out.set(weights.table.subarray(row * d, row * d + d), layout.denseCoordinates + r * d)
  }
  return out
}

/** (a·b) mod m for integers below 2^32, exact in float64. */
function mulMod(a: number, b: number, m: number): number {
  // Split b into 16-bit halves: each partial product stays below 2^48.
  const high = Math.floor(b / 65536)
  const low = b % 65536
  return ((((a % m) * high) % m) * 65536 + (a % m) * low) % m
}
