// Product quantisation (Jégou, Douze & Schmid, 2011) of a row-major table: each row is cut into
// `subspaces` slices, as even as the row allows (sliceStart), and each slice is replaced by the
// byte naming the nearest of 256 centroids learnt for that slice by k-means. A 100-dim float32
// row (400 bytes) becomes 30 bytes with slices of 4 and 3 values (as shipped); the codebooks
// cost 256 · dim values once, whatever the slicing. The weights codec stores the item embedding
// this way (dtype 'pq8', its centroids as int8 steps of a scale per slice), which is what puts
// the first visit under its byte budget.
import { createRandom } from './random'

/** Centroids per slice: one byte per code. */
export const PQ_CENTROIDS = 256

export interface ProductQuantiserOptions {
  /** Slices per row, at most the row length; they need not divide it (sliceStart). */
  subspaces: number
  /** Lloyd iterations per slice. */
  iterations?: number
  /** Rows the codebooks are learnt on (a seeded sample); every row is then encoded once. */
  sampleSize?: number
  seed?: number
  /**
   * Rounds slice `slice`'s learnt centroids, in place, to what will be stored (the weights codec:
   * int8 steps of a scale per slice) before every row is assigned its nearest one, so the codes
   * name the centroids a device decodes.
   */
  roundCentroids?: (centroids: Float32Array, slice: number) => void
}

export interface QuantisedRows {
  subspaces: number
  /** Slice by slice, [PQ_CENTROIDS][slice width] each: slice s's at PQ_CENTROIDS · sliceStart(s). */
  codebooks: Float32Array
  /** [rows][subspaces]: the centroid of each slice of each row. */
  codes: Uint8Array
}

/** Learns the codebooks on `values` ([rows, dim], row-major) and encodes every row. */
export function quantiseRows(
  values: Float32Array,
  rows: number,
  dim: number,
  options: ProductQuantiserOptions,
): QuantisedRows {
  const { subspaces, iterations = 12, sampleSize = 16_384, seed = 1, roundCentroids } = options
  if (!Number.isInteger(subspaces) || subspaces < 1 || subspaces > dim) {
    throw new RangeError(`expected 1 to ${dim} subspaces (the row length), got ${subspaces}`)
  }
  if (values.length !== rows * dim) {
    throw new RangeError(`expected ${rows} · ${dim} values, got ${values.length}`)
  }
  const widest = Math.ceil(dim / subspaces)
  const codebooks = new Float32Array(PQ_CENTROIDS * dim)
  const codes = new Uint8Array(rows * subspaces)
  const random = createRandom(seed)
  const sample = sampleRows(rows, sampleSize, random)
  const slice = new Float32Array(rows * widest)
  const sampled = new Float32Array(sample.length * widest)
  const assigned = new Uint8Array(rows)
  for (let s = 0; s < subspaces; s++) {
    const start = sliceStart(dim, subspaces, s)
    const sub = sliceStart(dim, subspaces, s + 1) - start
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < sub; k++) slice[r * sub + k] = values[r * dim + start + k]!
    }
    sample.forEach((r, i) => sampled.set(slice.subarray(r * sub, (r + 1) * sub), i * sub))
    const centroids = codebooks.subarray(PQ_CENTROIDS * start, PQ_CENTROIDS * (start + sub))
    if (!takeDistinctSlices(slice, rows, sub, centroids)) {
      kMeans(sampled, sample.length, sub, centroids, iterations, random)
    }
    roundCentroids?.(centroids, s)
    assign(slice, rows, sub, centroids, assigned)
    for (let r = 0; r < rows; r++) codes[r * subspaces + s] = assigned[r]!
  }
  return { subspaces, codebooks, codes }
}

/**
 * Where slice `s` of `subspaces` starts in a row of `dim` values (s = subspaces: the row's end).
 * The first dim mod subspaces slices are one value longer than the rest: 100 values in 30 slices
 * are 10 of 4, then 20 of 3.
 */
export function sliceStart(dim: number, subspaces: number, s: number): number {
  return s * Math.floor(dim / subspaces) + Math.min(s, dim % subspaces)
}

/** The rows the codes stand for: [rows, dim], row-major. */
export function reconstructRows(quantised: QuantisedRows, rows: number, dim: number): Float32Array {
  const { subspaces, codebooks, codes } = quantised
  const out = new Float32Array(rows * dim)
  for (let s = 0; s < subspaces; s++) {
    const start = sliceStart(dim, subspaces, s)
    const sub = sliceStart(dim, subspaces, s + 1) - start
    for (let r = 0; r < rows; r++) {
      const from = PQ_CENTROIDS * start + codes[r * subspaces + s]! * sub
      out.set(codebooks.subarray(from, from + sub), r * dim + start)
    }
  }
  return out
}

/**
 * A slice column with at most PQ_CENTROIDS distinct values is already quantised (a table decoded
 * from pq8, or a small one): its distinct values become the centroids, in the order first seen,
 * so every row finds its own exactly. Returns false, having written nothing useful, as soon as a
 * column has more.
 */
function takeDistinctSlices(
  slice: Float32Array,
  rows: number,
  sub: number,
  centroids: Float32Array,
): boolean {
  const bits = new Uint32Array(slice.buffer, slice.byteOffset, slice.length)
  const seen = new Set<string>()
  for (let r = 0; r < rows; r++) {
    const key = bits.subarray(r * sub, (r + 1) * sub).join(',')
    if (seen.has(key)) continue
    if (seen.size === PQ_CENTROIDS) return false
    centroids.set(slice.subarray(r * sub, (r + 1) * sub), seen.size * sub)
    seen.add(key)
  }
  // Unused centroids repeat the first: never chosen, and stored like any other.
  for (let c = seen.size; c < PQ_CENTROIDS; c++) centroids.copyWithin(c * sub, 0, sub)
  return true
}

/** `size` distinct row numbers drawn without replacement, or every row when there are fewer. */
function sampleRows(rows: number, size: number, random: () => number): Int32Array {
  const order = Int32Array.from({ length: rows }, (_, i) => i)
  const count = Math.min(rows, size)
  for (let i = 0; i < count; i++) {
    const pick = i + Math.floor(random() * (rows - i))
    ;[order[i], order[pick]] = [order[pick]!, order[i]!]
  }
  return order.subarray(0, count)
}

/**
 * Lloyd's k-means on `points` ([n, sub]) into `centroids` ([PQ_CENTROIDS, sub]), seeded with
 * distinct random points; an emptied cluster restarts at a random point. Returns the assignment.
 * With fewer points than centroids every point is its own centroid (the rest repeat point 0).
 */
function kMeans(
  points: Float32Array,
  n: number,
  sub: number,
  centroids: Float32Array,
  iterations: number,
  random: () => number,
): Uint8Array {
  const k = PQ_CENTROIDS
  const assigned = new Uint8Array(n)
  if (n === 0) return assigned
  const order = Int32Array.from({ length: n }, (_, i) => i)
  for (let c = 0; c < Math.min(k, n); c++) {
    const pick = c + Math.floor(random() * (n - c))
    ;[order[c], order[pick]] = [order[pick]!, order[c]!]
  }
  for (let c = 0; c < k; c++) {
    const point = c < n ? order[c]! : order[0]!
    centroids.set(points.subarray(point * sub, (point + 1) * sub), c * sub)
  }
  const sums = new Float64Array(k * sub)
  const counts = new Int32Array(k)
  for (let iteration = 0; iteration <= iterations; iteration++) {
    assign(points, n, sub, centroids, assigned)
    if (iteration === iterations) break
    sums.fill(0)
    counts.fill(0)
    for (let i = 0; i < n; i++) {
      const c = assigned[i]!
      counts[c]!++
      for (let j = 0; j < sub; j++) sums[c * sub + j]! += points[i * sub + j]!
    }
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) {
        const point = Math.floor(random() * n)
        centroids.set(points.subarray(point * sub, (point + 1) * sub), c * sub)
        continue
      }
      for (let j = 0; j < sub; j++) centroids[c * sub + j] = sums[c * sub + j]! / counts[c]!
    }
  }
  return assigned
}

function assign(
  points: Float32Array,
  n: number,
  sub: number,
  centroids: Float32Array,
  assigned: Uint8Array,
): void {
  for (let i = 0; i < n; i++) {
    let best = 0
    let bestDistance = Infinity
    for (let c = 0; c < PQ_CENTROIDS; c++) {
      let distance = 0
      for (let j = 0; j < sub; j++) {
        const diff = points[i * sub + j]! - centroids[c * sub + j]!
        distance += diff * diff
      }
      if (distance < bestDistance) {
        bestDistance = distance
        best = c
      }
    }
    assigned[i] = best
  }
}
