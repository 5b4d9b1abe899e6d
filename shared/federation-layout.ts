// Where an update's values sit in the model (PROTOCOL.md P8), shared by the device that cuts
// them out and the server that adds them back: the dense weights are every tensor but the item
// table, flattened in file order (describeWeights order); slice `s` covers the dense window
// [(s·D) mod P, … + D) and the table rows [(s·R) mod nItems, … + R), both wrapping around.
// With a table sketch (P8b) the R table vectors are instead a count sketch of every row's
// difference, hashed with `s` as the seed, and the server adds each row's signed bucket back.
import { updateNorm, type UpdateLayout } from './update-codec'
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

/**
 * P8b: a u32 hash of (seed, row); the row's bucket is `hash % R`, its sign + for a hash below
 * 2^31 and − above. murmur3's finaliser, so that consecutive rows and seeds scatter.
 */
export function sketchHash(seed: number, row: number): number {
  let x = (Math.imul(row, 0x9e3779b1) ^ mix32(seed >>> 0)) >>> 0
  x = mix32(x)
  return x
}

function mix32(value: number): number {
  let x = value
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}

const SIGN_BIT = 0x80000000

/** P8b's cell of `row` in a sketch of `buckets` seeded by `seed`: the bucket and the sign (±1). */
export function sketchCell(seed: number, row: number, buckets: number): [number, number] {
  const h = sketchHash(seed, row)
  return [h % buckets, h >= SIGN_BIT ? -1 : 1]
}

/**
 * The layout the server reads a stored or received update with: the body's own, plus the one
 * thing the body does not carry, P8c's first sketched row, from the server's current layout.
 */
export function serverReading(body: UpdateLayout, current: UpdateLayout): UpdateLayout {
  return { ...body, sketchFromRow: current.sketchFromRow }
}

/** P8c: the first row a sketch covers (0 unless `sketchFromRow` narrows it to appended rows). */
function firstSketchedRow(layout: UpdateLayout, nItems: number): number {
  return Math.min(layout.sketchFromRow ?? 0, nItems)
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
  const D = layout.denseCoordinates
  const out = new Float32Array(D + layout.sliceRows * d)
  for (let k = 0; k < D; k++) {
    out[k] = weights.dense[(denseStart + k) % shape.denseSize]!
  }
  if (layout.tableSketch) {
    for (let row = firstSketchedRow(layout, shape.nItems); row < shape.nItems; row++) {
      const h = sketchHash(slice, row)
      const into = D + (h % layout.sliceRows) * d
      const sign = h >= SIGN_BIT ? -1 : 1
      for (let c = 0; c < d; c++) out[into + c]! += sign * weights.table[row * d + c]!
    }
    return out
  }
  for (let r = 0; r < layout.sliceRows; r++) {
    const row = (rowStart + r) % shape.nItems
    out.set(weights.table.subarray(row * d, row * d + d), D + r * d)
  }
  return out
}

/**
 * Adds `scale` × what an update's values do to each weight (server side): the dense window, and
 * the slice's rows or, with a sketch, every row's signed bucket. `visit(j)` is told every dense
 * coordinate j and every row (denseSize + row) the update covers.
 */
export function addUpdateValues(
  into: Float64Array,
  values: Float32Array,
  scale: number,
  slice: number,
  layout: UpdateLayout,
  shape: ModelShape,
  visit: (coordinate: number) => void,
): void {
  const { denseStart, rowStart } = sliceSpan(slice, layout, shape)
  const { denseSize: P, nItems, embedDim: d } = shape
  const D = layout.denseCoordinates
  for (let k = 0; k < D; k++) {
    const j = (denseStart + k) % P
    into[j]! += scale * values[k]!
    visit(j)
  }
  if (layout.tableSketch) {
    for (let row = firstSketchedRow(layout, nItems); row < nItems; row++) {
      const h = sketchHash(slice, row)
      const from = D + (h % layout.sliceRows) * d
      const signed = h >= SIGN_BIT ? -scale : scale
      const to = P + row * d
      for (let c = 0; c < d; c++) into[to + c]! += signed * values[from + c]!
      visit(P + row)
    }
    return
  }
  for (let r = 0; r < layout.sliceRows; r++) {
    const row = (rowStart + r) % nItems
    const to = P + row * d
    const from = D + r * d
    for (let c = 0; c < d; c++) into[to + c]! += scale * values[from + c]!
    visit(P + row)
  }
}

/**
 * P11's norm: of what the update does to the model. For a slice that is its values' L2 norm; a
 * sketch bucket is added to every row hashed into it, so it counts once per such row.
 */
export function contributionNorm(
  values: Float32Array,
  slice: number,
  layout: UpdateLayout,
  nItems: number,
): number {
  if (!layout.tableSketch) return updateNorm(values)
  const D = layout.denseCoordinates
  const d = layout.embedDim
  const loads = new Float64Array(layout.sliceRows)
  for (let row = firstSketchedRow(layout, nItems); row < nItems; row++) {
    loads[sketchHash(slice, row) % layout.sliceRows]! += 1
  }
  let sum = 0
  for (let k = 0; k < D; k++) sum += values[k]! * values[k]!
  for (let b = 0; b < layout.sliceRows; b++) {
    let bucket = 0
    for (let c = 0; c < d; c++) bucket += values[D + b * d + c]! ** 2
    sum += loads[b]! * bucket
  }
  return Math.sqrt(sum)
}

/** (a·b) mod m for integers below 2^32, exact in float64. */
function mulMod(a: number, b: number, m: number): number {
  // Split b into 16-bit halves: each partial product stays below 2^48.
  const high = Math.floor(b / 65536)
  const low = b % 65536
  return ((((a % m) * high) % m) * 65536 + (a % m) * low) % m
}
