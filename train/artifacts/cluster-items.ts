// Communities of the co-visitation graph, used as the synthetic catalogue's categories so that
// "category" pools and per-category caps follow what shoppers actually browse together.
// Method: FastRP (Chen et al., CIKM 2019) embeds every item by propagating random vectors over
// the row-normalised graph; spherical k-means then cuts the embeddings into k groups. Both are a
// few sparse passes, about a second for DIGINETICA's 43k items, and deterministic from the seed.
import { createRandom } from '../../shared/random'
import type { CoVisitationGraph } from './co-visitation'

export interface ClusterOptions {
  seed?: number
  /** Width of the random projection. */
  dim?: number
  /** How many propagation steps; step t mixes in the t-hop neighbourhood. */
  hops?: number
  iterations?: number
}

const DEFAULTS: Required<ClusterOptions> = { seed: 7, dim: 32, hops: 3, iterations: 30 }

/** Label 0..k-1 per item, or -1 for an item with no co-visited neighbour. */
export function clusterItems(
  graph: CoVisitationGraph,
  k: number,
  options: ClusterOptions = {},
): Int32Array {
  const { seed, dim, hops, iterations } = { ...DEFAULTS, ...options }
  const n = graph.nItems
  const connected: number[] = []
  for (let i = 0; i < n; i++) if (graph.offsets[i + 1]! > graph.offsets[i]!) connected.push(i)
  const labels = new Int32Array(n).fill(-1)
  if (connected.length === 0) return labels
  const embedding = embedItems(graph, dim, hops, seed) // [n, dim], unit rows where connected
  const assigned = sphericalKMeans(embedding, dim, connected, Math.min(k, connected.length), {
    seed,
    iterations,
  })
  connected.forEach((item, p) => (labels[item] = assigned[p]!))
  return labels
}

/** Sum of the L2-normalised t-hop propagations of a random ±1 projection, rows normalised. */
function embedItems(
  graph: CoVisitationGraph,
  dim: number,
  hops: number,
  seed: number,
): Float32Array {
  const { nItems: n, offsets, neighbours, weights } = graph
  const random = createRandom(seed)
  let current = new Float32Array(n * dim)
  for (let i = 0; i < current.length; i++) current[i] = random() < 0.5 ? -1 : 1
  const degree = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    for (let e = offsets[i]!; e < offsets[i + 1]!; e++) degree[i]! += weights[e]!
  }
  const sum = new Float32Array(n * dim)
  for (let hop = 0; hop < hops; hop++) {
    const next = new Float32Array(n * dim)
    for (let i = 0; i < n; i++) {
      if (degree[i] === 0) continue
      const row = i * dim
      for (let e = offsets[i]!; e < offsets[i + 1]!; e++) {
        const w = weights[e]! / degree[i]!
        const from = neighbours[e]! * dim
        for (let c = 0; c < dim; c++) next[row + c]! += w * current[from + c]!
      }
    }
    normaliseRows(next, dim)
    for (let i = 0; i < sum.length; i++) sum[i]! += next[i]!
    current = next
  }
  normaliseRows(sum, dim)
  return sum
}

function normaliseRows(values: Float32Array, dim: number): void {
  for (let row = 0; row < values.length; row += dim) {
    let norm = 0
    for (let c = 0; c < dim; c++) norm += values[row + c]! ** 2
    if (norm === 0) continue
    const inverse = 1 / Math.sqrt(norm)
    for (let c = 0; c < dim; c++) values[row + c]! *= inverse
  }
}

/** k-means on unit vectors by cosine, k-means++ seeding; returns a label per listed point. */
function sphericalKMeans(
  embedding: Float32Array,
  dim: number,
  points: readonly number[],
  k: number,
  options: { seed: number; iterations: number },
): Int32Array {
  const random = createRandom(options.seed ^ 0x5bd1e995)
  const m = points.length
  const centroids = new Float32Array(k * dim)
  const similarity = (p: number, c: number) => {
    let dot = 0
    const row = points[p]! * dim
    for (let j = 0; j < dim; j++) dot += embedding[row + j]! * centroids[c * dim + j]!
    return dot
  }
  const setCentroid = (c: number, p: number) =>
    centroids.set(embedding.subarray(points[p]! * dim, points[p]! * dim + dim), c * dim)

  // k-means++: each new centre drawn with probability ∝ its distance (1 - cos) to the nearest.
  const nearest = new Float64Array(m).fill(Infinity)
  setCentroid(0, Math.floor(random() * m))
  for (let c = 1; c < k; c++) {
    let total = 0
    for (let p = 0; p < m; p++) {
      nearest[p] = Math.min(nearest[p]!, Math.max(0, 1 - similarity(p, c - 1)))
      total += nearest[p]!
    }
    let target = random() * total
    let pick = m - 1
    for (let p = 0; p < m; p++) {
      target -= nearest[p]!
      if (target < 0) {
        pick = p
        break
      }
    }
    setCentroid(c, pick)
  }

  const labels = new Int32Array(m).fill(-1)
  const best = new Float64Array(m)
  for (let iteration = 0; iteration < options.iterations; iteration++) {
    let changed = 0
    for (let p = 0; p < m; p++) {
      let label = 0
      let top = -Infinity
      for (let c = 0; c < k; c++) {
        const s = similarity(p, c)
        if (s > top) {
          top = s
          label = c
        }
      }
      best[p] = top
      if (labels[p] !== label) changed++
      labels[p] = label
    }
    if (changed === 0) break
    centroids.fill(0)
    const sizes = new Int32Array(k)
    for (let p = 0; p < m; p++) {
      const c = labels[p]!
      sizes[c]!++
      const row = points[p]! * dim
      for (let j = 0; j < dim; j++) centroids[c * dim + j]! += embedding[row + j]!
    }
    normaliseRows(centroids, dim)
    // An emptied cluster restarts at the point its current centre fits worst.
    for (let c = 0; c < k; c++) {
      if (sizes[c] !== 0) continue
      let worst = 0
      for (let p = 1; p < m; p++) if (best[p]! < best[worst]!) worst = p
      setCentroid(c, worst)
      best[worst] = Infinity
    }
  }
  return labels
}
