// An inverted-file (IVF) index over the item table for the embedding-neighbour recall: items are
// grouped into about √n clusters by spherical k-means, and a query scores the cluster centroids,
// then only the members of the best clusters. For DIGINETICA (43,097 items, 208 clusters) a query
// reads ~2,000 item vectors instead of all of them: the exact pass was most of `recommend`'s time.
//
// The clusters are built once per model, in the background (a few hundred ms of matMuls, yielding
// between chunks so requests are answered meanwhile); until then recall stays exact. Members are
// scored against whatever item vectors the caller passes, so locally fine-tuned rows are scored
// as they are now, in the cluster they were in when the index was built. Members are read from
// the caller's table (the worker's one copy, item-table.ts): a copy in cluster order scored a
// probed cluster ~1.6× faster but cost another 17 MB for DIGINETICA.
import * as tf from '@tensorflow/tfjs-core'
import { createRandom } from '../../../shared/random'
import { dot } from './dot'
import { selectTopIndices } from './top-indices'

/** Below this many items an exact pass is cheap (under half a millisecond): no index is built. */
export const MIN_INDEXED_ITEMS = 16_384

export interface NeighbourIndexOptions {
  /** Default √nItems. */
  clusters?: number
  /** k-means iterations on the sample. */
  iterations?: number
  /** Rows k-means runs on (default 32 per cluster); every row is assigned once at the end. */
  sampleSize?: number
  /** A query scans whole clusters, best first, until it has scored at least this many items. */
  probeItems?: number
  seed?: number
  /** Rows per assignment matMul; the build yields to the event loop between chunks. */
  chunkRows?: number
  /** Checked between chunks: the build gives up (rejects) once it returns true. */
  cancelled?: () => boolean
}

/**
 * Chosen on DIGINETICA's validation split with `npm run bench:recall-index` (BENCHMARKS.md): the
 * smallest probe tried whose for-you lists find the next item as often as exact recall does.
 */
export const DEFAULT_PROBE_ITEMS = 2048

export interface NeighbourIndex {
  readonly nItems: number
  readonly clusters: number
  /** Milliseconds the build took, yields included. */
  readonly buildMs: number
  /**
   * The (approximately) `count` highest dot products with `query` among the rows of `vectors`
   * (row-major [nItems, dim]), best first, `skip` excluded; only the best clusters' members
   * are read.
   */
  search(
    vectors: Float32Array,
    query: Float32Array,
    count: number,
    skip?: ReadonlySet<number>,
  ): number[]
}

const yieldToEvents = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

/** Index of the best centroid for each row: one [m, d]·[d, C] matMul per chunk. */
async function assignRows(
  rows: Float32Array,
  dim: number,
  centroids: Float32Array,
  clusters: number,
  chunkRows: number,
  cancelled: () => boolean,
): Promise<Int32Array> {
  const n = rows.length / dim
  const out = new Int32Array(n)
  const transposed = new Float32Array(dim * clusters)
  for (let c = 0; c < clusters; c++) {
    for (let k = 0; k < dim; k++) transposed[k * clusters + c] = centroids[c * dim + k]!
  }
  const centroidsT = tf.tensor2d(transposed, [dim, clusters])
  try {
    for (let start = 0; start < n; start += chunkRows) {
      if (cancelled()) throw new Error('expected a live recommender, the index build was cancelled')
      const m = Math.min(chunkRows, n - start)
      const best = tf.tidy(() => {
        const chunk = tf.tensor2d(rows.subarray(start * dim, (start + m) * dim), [m, dim])
        return tf.argMax(tf.matMul(chunk, centroidsT), 1)
      })
      out.set(await best.data(), start)
      best.dispose()
      await yieldToEvents()
    }
  } finally {
    centroidsT.dispose()
  }
  return out
}

/** Unit-length mean of each cluster's rows; an empty cluster takes a random row. */
function updateCentroids(
  rows: Float32Array,
  dim: number,
  assignment: Int32Array,
  centroids: Float32Array,
  random: () => number,
): void {
  const clusters = centroids.length / dim
  centroids.fill(0)
  const sizes = new Int32Array(clusters)
  for (let i = 0; i < assignment.length; i++) {
    const c = assignment[i]!
    sizes[c]! += 1
    for (let k = 0; k < dim; k++) centroids[c * dim + k]! += rows[i * dim + k]!
  }
  const n = assignment.length
  for (let c = 0; c < clusters; c++) {
    const offset = c * dim
    if (sizes[c] === 0) {
      const row = Math.floor(random() * n)
      centroids.set(rows.subarray(row * dim, (row + 1) * dim), offset)
    }
    const norm = Math.sqrt(dot(centroids, offset, centroids, offset, dim))
    if (norm > 0) for (let k = 0; k < dim; k++) centroids[offset + k]! /= norm
  }
}

/** `count` distinct rows, copied out, in a seeded random order. */
function sampleRows(
  rows: Float32Array,
  dim: number,
  count: number,
  random: () => number,
): Float32Array {
  const n = rows.length / dim
  const order = Int32Array.from({ length: n }, (_, i) => i)
  const out = new Float32Array(count * dim)
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (n - i))
    const pick = order[j]!
    order[j] = order[i]!
    order[i] = pick
    out.set(rows.subarray(pick * dim, (pick + 1) * dim), i * dim)
  }
  return out
}

/**
 * Clusters the rows of `vectors` ([nItems, dim], row-major) on the active TF.js backend.
 * @example
 * const index = await buildNeighbourIndex(table.values, table.nItems, table.dim)
 * const rows = index.search(table.values, query, 100, new Set([anchor]))
 */
export async function buildNeighbourIndex(
  vectors: Float32Array,
  nItems: number,
  dim: number,
  options: NeighbourIndexOptions = {},
): Promise<NeighbourIndex> {
  if (vectors.length !== nItems * dim) {
    throw new Error(`expected ${nItems} × ${dim} item values, got ${vectors.length}`)
  }
  const started = performance.now()
  // Whatever request made the caller start the build is answered first.
  await yieldToEvents()
  const clusters = Math.max(1, Math.min(nItems, options.clusters ?? Math.round(Math.sqrt(nItems))))
  const iterations = options.iterations ?? 6
  const sampleSize = Math.min(nItems, options.sampleSize ?? 32 * clusters)
  const probeItems = options.probeItems ?? DEFAULT_PROBE_ITEMS
  const chunkRows = options.chunkRows ?? 4096
  const cancelled = options.cancelled ?? (() => false)
  const random = createRandom(options.seed ?? 1)

  const sample = sampleRows(vectors, dim, sampleSize, random)
  // The first `clusters` sampled rows (distinct, random) start as centroids.
  const centroids = sample.slice(0, clusters * dim)
  for (let i = 0; i < iterations; i++) {
    const assignment = await assignRows(sample, dim, centroids, clusters, chunkRows, cancelled)
    updateCentroids(sample, dim, assignment, centroids, random)
  }
  const assignment = await assignRows(vectors, dim, centroids, clusters, chunkRows, cancelled)

  // Members grouped by cluster (CSR): cluster c holds members[offsets[c] .. offsets[c + 1]).
  const offsets = new Int32Array(clusters + 1)
  for (const c of assignment) offsets[c + 1]! += 1
  for (let c = 0; c < clusters; c++) offsets[c + 1]! += offsets[c]!
  const fill = offsets.slice(0, clusters)
  const members = new Int32Array(nItems)
  for (let row = 0; row < nItems; row++) members[fill[assignment[row]!]!++] = row
  const buildMs = performance.now() - started

  const centroidScores = new Float32Array(clusters)
  return {
    nItems,
    clusters,
    buildMs,
    search(values, query, count, skip = new Set()) {
      if (values.length !== nItems * dim || query.length !== dim) {
        throw new Error(
          `expected ${nItems} × ${dim} values and a ${dim}-vector, got ${values.length} and ${query.length}`,
        )
      }
      for (let c = 0; c < clusters; c++) centroidScores[c] = dot(centroids, c * dim, query, 0, dim)
      // Enough items to fill `count` even when every skipped row is among them.
      const wanted = Math.max(probeItems, count + skip.size)
      let scanned = 0
      const probed: number[] = []
      for (const c of selectTopIndices(centroidScores, clusters)) {
        if (scanned >= wanted) break
        probed.push(c)
        scanned += offsets[c + 1]! - offsets[c]!
      }
      const rows = new Int32Array(scanned)
      const scores = new Float32Array(scanned)
      let at = 0
      for (const c of probed) {
        const end = offsets[c + 1]!
        for (let m = offsets[c]!; m < end; m++) {
          const row = members[m]!
          rows[at] = row
          scores[at++] = dot(values, row * dim, query, 0, dim)
        }
      }
      // NaN never qualifies in selectTopIndices.
      for (let i = 0; i < scanned; i++) if (skip.has(rows[i]!)) scores[i] = NaN
      return selectTopIndices(scores, count).map((position) => rows[position]!)
    },
  }
}
