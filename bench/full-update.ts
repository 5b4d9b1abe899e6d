// A full sparse update for the DPF benchmarks (bench/dpf.ts and its Chromium entry): maxRows
// distinct viewed rows (the most keys with a payload a device ever sends) and every coordinate
// a random 16-bit value, as the device would hold it before splitting.
import type { SecureParams } from '../shared/secure-update'
import type { SparseContribution } from '../shared/sparse-update'

export function randomFullContribution(
  params: SecureParams,
  random: () => number,
): SparseContribution {
  const { layout, shape } = params
  const rows = new Set<number>()
  while (rows.size < layout.maxRows) rows.add(Math.floor(random() * shape.nItems))
  const word = () => Math.floor(random() * 2 ** 16) - 2 ** 15
  return {
    rows: Int32Array.from(rows),
    rowValues: Int32Array.from({ length: rows.size * shape.embedDim }, word),
    denseStart: 0,
    dense: Int32Array.from({ length: layout.denseCoordinates }, word),
    negatives: Int32Array.from({ length: layout.negativeRows * shape.embedDim }, word),
  }
}
