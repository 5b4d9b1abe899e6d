import { describe, expect, it } from 'vitest'
import { createSKnnScorer } from './s-knn'

// Session 0 shares items 0 and 1 with the prefix [0, 1], session 1 shares item 0, session 2 none.
const train = [Int32Array.from([0, 1, 2]), Int32Array.from([0, 3, 0]), Int32Array.from([4, 5])]
const prefix = Int32Array.from([0, 1])

function scoreOnce(options: Parameters<typeof createSKnnScorer>[2]): number[] {
  const scores = createSKnnScorer(train, 6, options).scoreBatch([prefix]) as Float32Array
  return Array.from(scores)
}

describe('createSKnnScorer', () => {
  it('sums the cosine similarities of the neighbours holding each item', () => {
    const near = 2 / Math.sqrt(3 * 2)
    const far = 1 / Math.sqrt(2 * 2) // session 1 as a set is {0, 3}
    const expected = [near + far, near, near, far, 0, 0]
    scoreOnce({}).forEach((score, i) => expect(score).toBeCloseTo(expected[i], 6))
  })

  it('uses Jaccard similarity when asked', () => {
    const expected = [2 / 3 + 1 / 3, 2 / 3, 2 / 3, 1 / 3, 0, 0]
    scoreOnce({ similarity: 'jaccard' }).forEach((score, i) =>
      expect(score).toBeCloseTo(expected[i], 6),
    )
  })

  it('samples only the most recent sessions sharing an item', () => {
    const scores = scoreOnce({ sampleSize: 1 })
    expect(scores.map((x) => (x > 0 ? 1 : 0))).toEqual([1, 0, 0, 1, 0, 0])
  })

  it('keeps the k most similar candidates', () => {
    const scores = scoreOnce({ k: 1 })
    expect(scores.map((x) => (x > 0 ? 1 : 0))).toEqual([1, 1, 1, 0, 0, 0])
  })

  it('clears each row between prefixes of a batch and between calls', () => {
    const scorer = createSKnnScorer(train, 6)
    scorer.scoreBatch([prefix, prefix])
    const scores = scorer.scoreBatch([Int32Array.from([5]), prefix]) as Float32Array
    const half = Math.SQRT1_2 // {5} against {4, 5}
    expect(Array.from(scores.subarray(0, 6))).toEqual([0, 0, 0, 0, half, half].map(Math.fround))
    expect(scores[6]).toBeCloseTo(2 / Math.sqrt(6) + 0.5, 6)
  })
})
