// The sparse update (PROTOCOL.md P29): what one device contributes to a release and what the
// server computes from many. A device sends the changes of the table rows it trained (the items
// its shopper viewed, at most `maxRows`) and of a window of the dense weights, in fixed point;
// the server keeps per-row sums and per-row counts and steps each row by its own mean, so a row
// a dozen devices trained moves as far as one a thousand trained, not a thousandth as far.
//
// Everything is in Z/2^32 (int32 with wrap-around), the group the two-server channel's shares live
// in: a sum of shares is the sum of the values, bit for bit, whichever channel carried them.
// Plaintext here; how the values travel (in the clear in the simulation, as secret shares in the
// product) is the channel's business, not this file's.

/** Fractional bits of the fixed-point values: a change is round(x · 2^16), in int32. */
export const FIXED_POINT_BITS = 16
const SCALE = 2 ** FIXED_POINT_BITS
/** The largest |sum| an int32 holds without wrapping, in real units (32,768). */
export const FIXED_POINT_RANGE = 2 ** 31 / SCALE

export function toFixed(x: number): number {
  return Math.round(x * SCALE) | 0
}

export function fromFixed(v: number): number {
  return (v | 0) / SCALE
}

/** What the manifest tells a device about the sparse update of a release (public). */
export interface SparseLayout {
  /** Rows one update carries: a device that trained more sends the most recently viewed. */
  maxRows: number
  embedDim: number
  /** Dense coordinates one update carries: the window [(s·D) mod P, … + D) of slice `s` (P8). */
  denseCoordinates: number
  /**
   * The release's public negatives: rows the server names in the manifest, which every device
   * pushes down while training and whose changes every update carries, in the manifest's order.
   */
  negativeRows: number
}

/** The model's two parameter groups' sizes (shared/federation-layout.ts's ModelShape). */
export interface SparseShape {
  denseSize: number
  nItems: number
  embedDim: number
}

/** Where slice `s`'s dense window starts: (s·D) mod P, exact for any 32-bit slice. */
export function denseWindowStart(slice: number, layout: SparseLayout, shape: SparseShape): number {
  if (layout.denseCoordinates > shape.denseSize)
    throw new RangeError(
      `expected at most ${shape.denseSize} dense coordinates, got ${layout.denseCoordinates}`,
    )
  return Number((BigInt(slice) * BigInt(layout.denseCoordinates)) % BigInt(shape.denseSize))
}

/** One device's contribution, before any channel: fixed-point changes of rows and a window. */
export interface SparseContribution {
  /** Distinct model rows, at most `maxRows`. */
  rows: Int32Array
  /** rows.length × embedDim fixed-point changes, row after row. */
  rowValues: Int32Array
  /** Where the dense window starts (public: it follows from the token's slice). */
  denseStart: number
  /** denseCoordinates fixed-point changes of the dense weights [denseStart, … + D), wrapping. */
  dense: Int32Array
  /**
   * negativeRows × embedDim fixed-point changes of the release's public negatives, in their
   * order; zero for a negative the device viewed (its change travels with the viewed rows).
   */
  negatives: Int32Array
}

/** A release's totals: what both channels compute, and all the server ever learns. */
export interface SparseSums {
  /** nItems × embedDim, per-row sums of the changes (wrapping int32). */
  table: Int32Array
  /** Per row: how many contributions trained it. */
  counts: Int32Array
  /** Per dense coordinate: the sum of the changes, and how many windows covered it. */
  dense: Int32Array
  denseCounts: Int32Array
  /** The release's public negatives (rows), and the sums of their changes (rows × embedDim). */
  negativeRows: Int32Array
  negatives: Int32Array
  contributions: number
}

export function createSparseSums(shape: SparseShape, negativeRows: Int32Array): SparseSums {
  return {
    table: new Int32Array(shape.nItems * shape.embedDim),
    counts: new Int32Array(shape.nItems),
    dense: new Int32Array(shape.denseSize),
    denseCounts: new Int32Array(shape.denseSize),
    negativeRows,
    negatives: new Int32Array(negativeRows.length * shape.embedDim),
    contributions: 0,
  }
}

/** Throws a RangeError naming the first thing about `c` that `layout` and `shape` do not allow. */
export function checkContribution(
  c: SparseContribution,
  layout: SparseLayout,
  shape: SparseShape,
): void {
  if (layout.embedDim !== shape.embedDim)
    throw new RangeError(`expected embedDim ${shape.embedDim}, got ${layout.embedDim}`)
  if (c.rows.length > layout.maxRows)
    throw new RangeError(`expected at most ${layout.maxRows} rows, got ${c.rows.length}`)
  if (c.rowValues.length !== c.rows.length * shape.embedDim)
    throw new RangeError(
      `expected ${c.rows.length * shape.embedDim} row values, got ${c.rowValues.length}`,
    )
  const seen = new Set<number>()
  for (const row of c.rows) {
    if (!(row >= 0 && row < shape.nItems))
      throw new RangeError(`expected rows in [0, ${shape.nItems}), got ${row}`)
    if (seen.has(row)) throw new RangeError(`expected distinct rows, got ${row} twice`)
    seen.add(row)
  }
  if (c.dense.length !== layout.denseCoordinates)
    throw new RangeError(`expected ${layout.denseCoordinates} dense values, got ${c.dense.length}`)
  if (c.negatives.length !== layout.negativeRows * shape.embedDim)
    throw new RangeError(
      `expected ${layout.negativeRows * shape.embedDim} negative values, got ${c.negatives.length}`,
    )
  if (!(Number.isInteger(c.denseStart) && c.denseStart >= 0 && c.denseStart < shape.denseSize))
    throw new RangeError(`expected denseStart in [0, ${shape.denseSize}), got ${c.denseStart}`)
}

/** Adds `c` into `sums` (the plaintext channel's server, and each share's in the secure one). */
export function addContribution(sums: SparseSums, c: SparseContribution, embedDim: number): void {
  for (let k = 0; k < c.rows.length; k++) {
    const row = c.rows[k]!
    const into = row * embedDim
    const from = k * embedDim
    for (let j = 0; j < embedDim; j++)
      sums.table[into + j] = (sums.table[into + j]! + c.rowValues[from + j]!) | 0
    sums.counts[row] = (sums.counts[row]! + 1) | 0
  }
  const P = sums.dense.length
  for (let k = 0; k < c.dense.length; k++) {
    const at = (c.denseStart + k) % P
    sums.dense[at] = (sums.dense[at]! + c.dense[k]!) | 0
    sums.denseCounts[at] = (sums.denseCounts[at]! + 1) | 0
  }
  if (c.negatives.length !== sums.negatives.length)
    throw new RangeError(
      `expected ${sums.negatives.length} negative values, got ${c.negatives.length}`,
    )
  for (let k = 0; k < c.negatives.length; k++)
    sums.negatives[k] = (sums.negatives[k]! + c.negatives[k]!) | 0
  sums.contributions++
}

export interface SparseStep {
  /** η of the table rows: a row moves by η × (its sum / its count). */
  tableRate: number
  /**
   * η of the dense weights and the public negatives: a coordinate moves by η × (its sum / the
   * updates carrying it): the windows covering it, or every update for a negative.
   */
  denseRate: number
}

/**
 * The release: each row and dense coordinate any contribution touched moves by η times its own
 * mean change (a public negative also by its mean over every update); everything else stays. Returns new arrays; the inputs are not modified. The same
 * sums give the same weights bit for bit (float64 arithmetic, one rounding to float32 at the end).
 */
export function applySparseSums(
  weights: { dense: Float32Array; table: Float32Array },
  sums: SparseSums,
  step: SparseStep,
  embedDim: number,
): { dense: Float32Array; table: Float32Array } {
  const table = weights.table.slice()
  for (let row = 0; row < sums.counts.length; row++) {
    const n = sums.counts[row]!
    if (n === 0) continue
    const at = row * embedDim
    for (let j = 0; j < embedDim; j++)
      table[at + j] = table[at + j]! + (step.tableRate * fromFixed(sums.table[at + j]!)) / n
  }
  const n = sums.contributions
  if (n > 0)
    for (let k = 0; k < sums.negativeRows.length; k++) {
      const at = sums.negativeRows[k]! * embedDim
      for (let j = 0; j < embedDim; j++)
        table[at + j] =
          table[at + j]! + (step.denseRate * fromFixed(sums.negatives[k * embedDim + j]!)) / n
    }
  const dense = weights.dense.slice()
  for (let k = 0; k < dense.length; k++) {
    const n = sums.denseCounts[k]!
    if (n > 0) dense[k] = dense[k]! + (step.denseRate * fromFixed(sums.dense[k]!)) / n
  }
  return { dense, table }
}

/** `c` without the rows `dropped` (those cuckoo placement could not fit, row-buckets.ts). */
export function withoutRows(
  c: SparseContribution,
  dropped: readonly number[],
  embedDim: number,
): SparseContribution {
  if (dropped.length === 0) return c
  const gone = new Set(dropped)
  const keep = Array.from(c.rows.keys()).filter((k) => !gone.has(c.rows[k]!))
  const rowValues = new Int32Array(keep.length * embedDim)
  keep.forEach((k, i) =>
    rowValues.set(c.rowValues.subarray(k * embedDim, (k + 1) * embedDim), i * embedDim),
  )
  return { ...c, rows: Int32Array.from(keep, (k) => c.rows[k]!), rowValues }
}
