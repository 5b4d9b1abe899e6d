import * as tf from '@tensorflow/tfjs-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { setNodeBackend } from '../../../model/node-backend'
import { createGruModel, type GruModel } from '../../../model/gru-model'
import { readItemTable, type ItemTable } from './item-table'
import {
  DEFAULT_RECALL_SIZES,
  findNeighbours,
  mergeCandidates,
  recallForYou,
  recallFrequentlyBoughtTogether,
  recallHistory,
  recallTrending,
  type RecallDeps,
} from './recall'
import type { NeighbourIndex } from './neighbour-index'
import { lookup, pools, tinyConfig } from './test-fixtures'

describe('mergeCandidates', () => {
  it('keeps the first source of an item, per-list quotas of new items, and the total', () => {
    const merged = mergeCandidates(
      [
        { source: 'co-visitation', indices: [4, 9], quota: 10 },
        { source: 'embedding', indices: [9, 4, 17, 18, 19], quota: 2 },
        { source: 'trending', indices: [17, 5, 6, 7], quota: 10 },
      ],
      lookup,
      5,
    )
    expect(merged).toEqual([
      { index: 4, source: 'co-visitation' },
      { index: 9, source: 'co-visitation' },
      { index: 17, source: 'embedding' },
      { index: 18, source: 'embedding' },
      { index: 5, source: 'trending' },
    ])
  })

  it('skips rows the catalogue does not have', () => {
    const merged = mergeCandidates(
      [{ source: 'trending', indices: [1, 400, 2], quota: 9 }],
      lookup,
      9,
    )
    expect(merged.map((c) => c.index)).toEqual([1, 2])
  })
})

describe('recall on the item table (cpu)', () => {
  let model: GruModel
  let table: ItemTable
  let deps: RecallDeps
  let before = 0
  beforeAll(async () => {
    await setNodeBackend('cpu')
    model = createGruModel(tinyConfig, 11)
    table = await readItemTable(model)
    deps = { pools, lookup, table: async () => table, sizes: DEFAULT_RECALL_SIZES }
    before = tf.memory().numTensors
  })
  afterEach(() => {
    expect(tf.memory().numTensors).toBe(before)
  })
  afterAll(() => {
    model.dispose()
  })

  async function readItemVectors(): Promise<Float32Array[]> {
    const vectors = tf.tidy(() => model.itemVectors())
    const values = (await vectors.data()) as Float32Array
    vectors.dispose()
    const d = tinyConfig.embedDim
    return Array.from({ length: tinyConfig.nItems }, (_, i) => values.slice(i * d, (i + 1) * d))
  }

  it('finds the nearest items to weighted anchors as a host-side brute force does', async () => {
    const vectors = await readItemVectors()
    const anchors = [7, 21]
    const weights = [1, 0.5]
    const score = (i: number) =>
      anchors.reduce(
        (sum, a, k) =>
          sum + weights[k]! * vectors[a]!.reduce((s, x, j) => s + x * vectors[i]![j]!, 0),
        0,
      )
    const expected = Array.from({ length: tinyConfig.nItems }, (_, i) => i)
      .filter((i) => !anchors.includes(i))
      .sort((a, b) => score(b) - score(a))
      .slice(0, 10)
    expect(findNeighbours(table, anchors, weights, 10)).toEqual(expected)
  })

  it('with an index, searches it with the weighted sum of the anchors, anchors skipped', async () => {
    const vectors = await readItemVectors()
    const calls: Array<{ query: Float32Array; count: number; skip: ReadonlySet<number> }> = []
    const index: NeighbourIndex = {
      nItems: tinyConfig.nItems,
      clusters: 1,
      buildMs: 0,
      search(values, query, count, skip = new Set()) {
        // The table normalises in JS what the model normalises in TF.js: equal to float32 rounding.
        const expected = vectors.flatMap((v) => [...v])
        expect(Math.max(...expected.map((x, i) => Math.abs(x - values[i]!)))).toBeLessThan(1e-6)
        calls.push({ query: query.slice(), count, skip })
        return [3, 1, 4]
      },
    }
    expect(findNeighbours(table, [7, 21], [1, 0.5], 10, index)).toEqual([3, 1, 4])
    const expected = vectors[7]!.map((x, k) => x + 0.5 * vectors[21]![k]!)
    expect(calls).toHaveLength(1)
    expect(Array.from(calls[0]!.query)).toEqual(Array.from(expected))
    expect(calls[0]!.count).toBe(10)
    expect([...calls[0]!.skip]).toEqual([7, 21])
  })

  it('for-you: co-visitation of the newest item first, every source labelled, no duplicates', async () => {
    const session = Int32Array.from([4, 9, 17])
    const candidates = await recallForYou(deps, session, 17)
    const indices = candidates.map((c) => c.index)
    expect(new Set(indices).size).toBe(indices.length)
    expect(candidates.slice(0, 3)).toEqual([
      { index: 18, source: 'co-visitation' },
      { index: 24, source: 'co-visitation' },
      { index: 30, source: 'co-visitation' },
    ])
    const sources = new Set(candidates.map((c) => c.source))
    for (const source of ['co-visitation', 'embedding', 'category'] as const) {
      expect(sources).toContain(source)
    }
    // The whole tiny catalogue fits within the budget.
    expect(candidates.length).toBeLessThanOrEqual(DEFAULT_RECALL_SIZES.total)
  })

  it('frequently bought together: co-visitation first, embedding only fills up', async () => {
    const small = { ...deps, sizes: { ...DEFAULT_RECALL_SIZES, embedding: 5 } }
    const candidates = await recallFrequentlyBoughtTogether(small, 8)
    expect(candidates.slice(0, 3)).toEqual([
      { index: 9, source: 'co-visitation' },
      { index: 15, source: 'co-visitation' },
      { index: 21, source: 'co-visitation' },
    ])
    expect(candidates.slice(3).every((c) => c.source === 'embedding')).toBe(true)
    expect(candidates).toHaveLength(5)
    expect(candidates.map((c) => c.index)).not.toContain(8)
  })

  it('trending keeps pool order, then popular and new', () => {
    const candidates = recallTrending(deps, 15)
    expect(candidates.map((c) => c.index)).toEqual([
      5, 3, 12, 7, 20, 1, 30, 9, 14, 22, 33, 2, 0, 4, 6,
    ])
    expect(candidates.slice(12).every((c) => c.source === 'popular')).toBe(true)
  })

  it('history is newest first, each product once, unknown ids dropped', () => {
    const candidates = recallHistory(deps, ['p1', 'p2', 'gone', 'p4', 'p2'], 10)
    expect(candidates).toEqual([
      { index: 2, source: 'history' },
      { index: 4, source: 'history' },
      { index: 1, source: 'history' },
    ])
  })
})
