import { describe, expect, it } from 'vitest'
import { createMetricsAccumulator, popularMask, rankOfTarget, topKIndices } from './metrics'

describe('rankOfTarget', () => {
  it('counts a tie with the target against the scorer', () => {
    const scores = Float32Array.from([0.1, 0.5, 0.5, 0.2])
    expect(rankOfTarget(scores, 0, 4, 2)).toBe(2)
    expect(rankOfTarget(scores, 0, 4, 1)).toBe(2)
    expect(rankOfTarget(scores, 0, 4, 3)).toBe(3)
    expect(rankOfTarget(scores, 0, 4, 0)).toBe(4)
  })

  it('ranks every item last when the row is constant', () => {
    expect(rankOfTarget(new Float32Array(7), 0, 7, 3)).toBe(7)
  })

  it('reads the row at the given offset only', () => {
    const scores = Float32Array.from([9, 9, 9, 0.3, 0.1, 0.2])
    expect(rankOfTarget(scores, 3, 3, 2)).toBe(2)
  })

  it('ranks a NaN target last and never lets a NaN item beat the target', () => {
    expect(rankOfTarget(Float32Array.from([0.1, NaN, 0.3]), 0, 3, 1)).toBe(3)
    expect(rankOfTarget(Float32Array.from([NaN, 0.2, NaN, 0.1]), 0, 4, 1)).toBe(1)
  })
})

/** Reference order: score descending, NaN after every number, ties to the lower index. */
function sortTopK(row: Float32Array, k: number): number[] {
  const order = Array.from(row.keys())
  order.sort((a, b) => {
    const x = row[a]
    const y = row[b]
    if (Number.isNaN(x) !== Number.isNaN(y)) return Number.isNaN(x) ? 1 : -1
    if (x !== y && !Number.isNaN(x)) return y - x
    return a - b
  })
  return order.slice(0, k)
}

/** Deterministic xorshift so a failing fuzz case can be replayed. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 2 ** 32
  }
}

describe('topKIndices', () => {
  it('orders the best items first and breaks ties by the lower index', () => {
    const scores = Float32Array.from([0.1, 0.5, 0.5, 0.2, 0.9])
    expect(Array.from(topKIndices(scores, 0, 5, 3))).toEqual([4, 1, 2])
  })

  it('returns every item when k exceeds the row and nothing for k = 0', () => {
    const scores = Float32Array.from([0.3, 0.1, 0.2])
    expect(Array.from(topKIndices(scores, 0, 3, 10))).toEqual([0, 2, 1])
    expect(topKIndices(scores, 0, 3, 0)).toHaveLength(0)
  })

  it('puts NaN after every number, including -Infinity', () => {
    const scores = Float32Array.from([NaN, -Infinity, NaN, 0.5])
    expect(Array.from(topKIndices(scores, 0, 4, 4))).toEqual([3, 1, 0, 2])
    expect(Array.from(topKIndices(scores, 0, 4, 2))).toEqual([3, 1])
  })

  it('matches a full sort on random rows with ties and NaN', () => {
    const random = createRandom(42)
    for (let trial = 0; trial < 2000; trial++) {
      const nItems = Math.floor(random() * 60)
      const offset = Math.floor(random() * 5)
      const k = Math.floor(random() * 25)
      // Few distinct values make ties common; some rows are mostly NaN.
      const levels = 1 + Math.floor(random() * 8)
      const nanRate = random() < 0.3 ? random() : 0
      const scores = new Float32Array(offset + nItems).fill(7)
      for (let i = 0; i < nItems; i++) {
        const r = random()
        scores[offset + i] = r < nanRate ? NaN : Math.floor(random() * levels) - levels / 2
      }
      const expected = sortTopK(scores.subarray(offset), k)
      expect(Array.from(topKIndices(scores, offset, nItems, k))).toEqual(expected)
    }
  })
})

describe('popularMask', () => {
  it('marks the ceil(fraction · n) most clicked items, ties to the lower index', () => {
    const mask = popularMask(Int32Array.from([5, 1, 5, 0, 9]), 0.4)
    expect(Array.from(mask)).toEqual([1, 0, 0, 0, 1])
  })

  it('never marks an item without clicks', () => {
    expect(Array.from(popularMask(Int32Array.from([0, 0, 3]), 1))).toEqual([0, 0, 1])
  })

  it('marks 1 % of the catalogue by default', () => {
    const counts = Int32Array.from({ length: 43_097 }, (_, i) => i + 1)
    const mask = popularMask(counts)
    expect(mask.reduce((sum, x) => sum + x, 0)).toBe(431)
    expect(mask[43_096]).toBe(1)
    expect(mask[0]).toBe(0)
  })
})

describe('createMetricsAccumulator', () => {
  it('averages recall, MRR, NDCG and MAP per cut-off over hand-computed ranks', () => {
    const metrics = createMetricsAccumulator({ nItems: 50, popularItems: new Uint8Array(50) })
    // One relevant item a case: AP@K is the reciprocal rank, so map@K = mrr@K.
    for (const rank of [1, 3, 7, 15, 40]) metrics.add(rank, new Int32Array(0))
    const result = metrics.result()
    expect(result.cases).toBe(5)
    const expected = {
      'recall@5': 2 / 5,
      'mrr@5': (1 + 1 / 3) / 5,
      'ndcg@5': (1 + 1 / 2) / 5,
      'map@5': (1 + 1 / 3) / 5,
      'recall@10': 3 / 5,
      'mrr@10': (1 + 1 / 3 + 1 / 7) / 5,
      'ndcg@10': (1 + 1 / 2 + 1 / 3) / 5,
      'map@10': (1 + 1 / 3 + 1 / 7) / 5,
      'recall@20': 4 / 5,
      'mrr@20': (1 + 1 / 3 + 1 / 7 + 1 / 15) / 5,
      'ndcg@20': (1 + 1 / 2 + 1 / 3 + 1 / 4) / 5,
      'map@20': (1 + 1 / 3 + 1 / 7 + 1 / 15) / 5,
    }
    expect(Object.keys(result.metrics)).toEqual(Object.keys(expected))
    for (const [name, value] of Object.entries(expected)) {
      expect(result.metrics[name as keyof typeof expected]).toBeCloseTo(value, 12)
    }
  })

  it('counts every item the session goes on to as relevant for MAP@K, once each', () => {
    const metrics = createMetricsAccumulator({
      ks: [1, 3, 5],
      nItems: 10,
      popularItems: new Uint8Array(10),
    })
    // The session goes on to 4, 7, 7 (a repeat), 2: R = {4, 7, 2}. The list: 7 at 1, 4 at 3, 2 at 6.
    metrics.add(3, Int32Array.from([7, 0, 4, 1, 3, 2, 5]), Int32Array.from([4, 7, 7, 2]))
    const { metrics: m } = metrics.result()
    expect(m['map@1']).toBeCloseTo(1 / 3, 12) // precision@1 = 1, over |R| = 3
    expect(m['map@3']).toBeCloseTo((1 + 2 / 3) / 3, 12)
    expect(m['map@5']).toBeCloseTo((1 + 2 / 3) / 3, 12) // 2 is at 6, past K
    // The target's own metrics are unchanged by the rest: rank 3.
    expect(m['mrr@3']).toBeCloseTo(1 / 3, 12)
    expect(m['recall@1']).toBe(0)
    // A list too short for the largest K is a caller's bug, not a zero.
    expect(() => metrics.add(1, Int32Array.from([4]), Int32Array.from([4, 2]))).toThrow(
      /expected the best 5 items for map@5, got 1/,
    )
  })

  it('measures coverage and popular share on the top-20 lists', () => {
    const popularItems = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    const metrics = createMetricsAccumulator({ ks: [1], nItems: 10, popularItems })
    metrics.add(1, Int32Array.from([0, 1, 2]))
    metrics.add(2, Int32Array.from([0, 3]))
    const result = metrics.result()
    expect(result['coverage@20']).toBeCloseTo(4 / 10, 12)
    expect(result['popShare@20']).toBeCloseTo(2 / 5, 12)
    expect(result.metrics['recall@1']).toBe(0.5)
  })

  it('ignores list entries beyond the 20th', () => {
    const popularItems = new Uint8Array(30).fill(1, 20)
    const metrics = createMetricsAccumulator({ nItems: 30, popularItems })
    metrics.add(
      1,
      Int32Array.from({ length: 30 }, (_, i) => i),
    )
    expect(metrics.result()['coverage@20']).toBeCloseTo(20 / 30, 12)
    expect(metrics.result()['popShare@20']).toBe(0)
  })

  it('reports zeros, not NaN, before any case', () => {
    const result = createMetricsAccumulator({ nItems: 3, popularItems: new Uint8Array(3) }).result()
    expect(result.cases).toBe(0)
    expect(result.metrics['mrr@20']).toBe(0)
    expect(result['popShare@20']).toBe(0)
  })

  it('rejects a popular mask of the wrong length', () => {
    expect(() => createMetricsAccumulator({ nItems: 4, popularItems: new Uint8Array(3) })).toThrow(
      'expected popularItems of length 4, got 3',
    )
  })
})
