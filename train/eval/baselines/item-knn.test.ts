import { describe, expect, it } from 'vitest'
import { topKIndices } from '../../../model/eval/metrics'
import { createItemKnnScorer } from './item-knn'

describe('createItemKnnScorer', () => {
  it('recommends the item that always accompanies the last item', () => {
    const train = [
      Int32Array.from([0, 1]),
      Int32Array.from([2, 0, 1]),
      Int32Array.from([3, 4]),
      Int32Array.from([0, 1, 5]),
      Int32Array.from([2, 3]),
    ]
    const scorer = createItemKnnScorer(train, 6)
    const scores = scorer.scoreBatch([Int32Array.from([3, 0])]) as Float32Array
    expect(topKIndices(scores, 0, 6, 1)[0]).toBe(1)
    // The prefix's last item itself is never its own neighbour.
    expect(scores[0]).toBe(0)
  })

  it('scores from the last item of the prefix only', () => {
    const train = [Int32Array.from([0, 1]), Int32Array.from([2, 3])]
    const scores = createItemKnnScorer(train, 4).scoreBatch([
      Int32Array.from([0, 2]),
    ]) as Float32Array
    expect(Array.from(scores.map((x) => (x > 0 ? 1 : 0)))).toEqual([0, 0, 0, 1])
  })

  it('equals cosine similarity of click vectors without regularisation', () => {
    // supp(0) = 3, supp(1) = 2, supp(2) = 1; cooc(0, 1) = 2, cooc(0, 2) = 1.
    const train = [Int32Array.from([0, 1]), Int32Array.from([0, 2]), Int32Array.from([0, 1])]
    const scorer = createItemKnnScorer(train, 3, { lambda: 0, alpha: 0.5 })
    const scores = scorer.scoreBatch([Int32Array.from([0])]) as Float32Array
    expect(scores[1]).toBeCloseTo(2 / Math.sqrt(3 * 2), 6)
    expect(scores[2]).toBeCloseTo(1 / Math.sqrt(3 * 1), 6)
  })

  it('weighs repeated clicks in a session as session-rec does', () => {
    // Item 0 clicked twice beside item 1: cooc = 2 · 1, supports 2 and 1.
    const train = [Int32Array.from([0, 1, 0])]
    const scorer = createItemKnnScorer(train, 2, { lambda: 0, alpha: 0.5 })
    const scores = scorer.scoreBatch([Int32Array.from([1])]) as Float32Array
    expect(scores[0]).toBeCloseTo(2 / Math.sqrt(2 * 1), 6)
  })

  it('keeps only the requested number of neighbours, the most similar ones', () => {
    const train = [
      Int32Array.from([0, 1]),
      Int32Array.from([0, 1]),
      Int32Array.from([0, 2]),
      Int32Array.from([0, 3]),
    ]
    const scorer = createItemKnnScorer(train, 4, { neighbours: 1, lambda: 0 })
    const scores = scorer.scoreBatch([Int32Array.from([0])]) as Float32Array
    expect(Array.from(scores.map((x) => (x > 0 ? 1 : 0)))).toEqual([0, 1, 0, 0])
  })
})
