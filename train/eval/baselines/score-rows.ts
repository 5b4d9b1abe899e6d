// Scorers hand back one reused buffer per call: a fresh 256 × 43k Float32Array per batch would be
// 44 MB of garbage each time, and the evaluator reads a batch fully before asking for the next.

/** Returns a function giving a [rows, nItems] Float32Array that reuses one growing allocation. */
export function createScoreRows(nItems: number): (rows: number) => Float32Array {
  let buffer = new Float32Array(0)
  return (rows) => {
    const length = rows * nItems
    if (buffer.length < length) buffer = new Float32Array(length)
    return buffer.length === length ? buffer : buffer.subarray(0, length)
  }
}
