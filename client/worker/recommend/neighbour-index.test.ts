import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from '../../../model/node-backend'
import { standardNormal } from '../../../shared/random'
import { createRandom } from '../../../shared/random'
import { buildNeighbourIndex } from './neighbour-index'

const DIM = 8

/** Unit rows around `centres` random directions, shuffled so no cluster is contiguous. */
function clusteredRows(n: number, centres: number, spread: number, seed: number): Float32Array {
  const random = createRandom(seed)
  const gaussian = () => standardNormal(random)
  const directions = Array.from({ length: centres }, () => Array.from({ length: DIM }, gaussian))
  const rows = new Float32Array(n * DIM)
  for (let i = 0; i < n; i++) {
    const centre = directions[Math.floor(random() * centres)]!
    const row = centre.map((x) => x + spread * gaussian())
    const norm = Math.hypot(...row)
    rows.set(
      row.map((x) => x / norm),
      i * DIM,
    )
  }
  return rows
}

/** Exact top `count` rows by dot product, best first, ties to the lower row, `skip` excluded. */
function exactTop(
  rows: Float32Array,
  query: Float32Array,
  count: number,
  skip = new Set<number>(),
) {
  const n = rows.length / DIM
  const score = (i: number) => query.reduce((s, q, k) => s + q * rows[i * DIM + k]!, 0)
  return Array.from({ length: n }, (_, i) => i)
    .filter((i) => !skip.has(i))
    .map((i) => [i, score(i)] as const)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, count)
    .map(([i]) => i)
}

const rowOf = (rows: Float32Array, i: number) => rows.slice(i * DIM, (i + 1) * DIM)

describe('buildNeighbourIndex (cpu)', () => {
  beforeAll(async () => {
    await setNodeBackend('cpu')
  })

  it('probing every cluster is the exact search, skipped rows excluded', async () => {
    const n = 600
    const rows = clusteredRows(n, 12, 0.3, 1)
    const index = await buildNeighbourIndex(rows, n, DIM, { clusters: 24, probeItems: n })
    const random = createRandom(2)
    for (let trial = 0; trial < 20; trial++) {
      const anchor = Math.floor(random() * n)
      const query = rowOf(rows, anchor)
      const skip = new Set([anchor])
      // Float32 sums in a different order may swap near-ties: compare as sets, then the order
      // of clearly separated scores through the exact list's first 10.
      const got = index.search(rows, query, 30, skip)
      const want = exactTop(rows, query, 30, skip)
      expect(new Set(got)).toEqual(new Set(want))
      expect(got.slice(0, 10)).toEqual(want.slice(0, 10))
    }
  })

  it('puts every row in exactly one cluster', async () => {
    const n = 500
    const rows = clusteredRows(n, 10, 0.3, 3)
    const index = await buildNeighbourIndex(rows, n, DIM, { clusters: 20, probeItems: n })
    const all = index.search(rows, rowOf(rows, 0), n)
    expect(all).toHaveLength(n)
    expect(new Set(all).size).toBe(n)
  })

  it('finds most true neighbours while scanning a tenth of the rows', async () => {
    const n = 4000
    const rows = clusteredRows(n, 40, 0.25, 5)
    const index = await buildNeighbourIndex(rows, n, DIM, { probeItems: n / 10 })
    expect(index.clusters).toBe(63) // √4000
    const random = createRandom(6)
    let found = 0
    const trials = 50
    for (let trial = 0; trial < trials; trial++) {
      const anchor = Math.floor(random() * n)
      const query = rowOf(rows, anchor)
      const got = new Set(index.search(rows, query, 20, new Set([anchor])))
      found += exactTop(rows, query, 20, new Set([anchor])).filter((i) => got.has(i)).length
    }
    // Rows filed in clusters at random would find about a tenth (the share scanned).
    expect(found / (trials * 20)).toBeGreaterThan(0.9)
  })

  it('scores the vectors it is given, not those it was built from', async () => {
    const n = 300
    const rows = clusteredRows(n, 6, 0.3, 7)
    const index = await buildNeighbourIndex(rows, n, DIM, { clusters: 10, probeItems: n })
    const moved = rows.slice()
    moved.set(rowOf(rows, 0), 299 * DIM) // row 299 now equals row 0
    const before = index.search(rows, rowOf(rows, 0), 1, new Set([0]))
    expect(before).not.toEqual([299])
    expect(index.search(moved, rowOf(rows, 0), 1, new Set([0]))).toEqual([299])
    expect(index.search(rows, rowOf(rows, 0), 1, new Set([0]))).toEqual(before)
  })

  it('rejects wrong shapes, and a cancelled build releases its tensors', async () => {
    const rows = clusteredRows(100, 4, 0.3, 8)
    await expect(buildNeighbourIndex(rows, 99, DIM)).rejects.toThrow(/expected 99 × 8/)
    const index = await buildNeighbourIndex(rows, 100, DIM, { clusters: 4 })
    expect(() => index.search(rows, new Float32Array(3), 5)).toThrow(/8-vector/)
    const before = tf.memory().numTensors
    await expect(
      buildNeighbourIndex(rows, 100, DIM, { clusters: 4, cancelled: () => true }),
    ).rejects.toThrow(/cancelled/)
    expect(tf.memory().numTensors).toBe(before)
  })
})
