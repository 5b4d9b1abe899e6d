import { describe, expect, it } from 'vitest'
import { topKIndices } from '../../../model/eval/metrics'
import { createSPopScorer } from './s-pop'

// Training popularity: item 4 (3 clicks) > 3 (2) > 0, 1, 2 (1 each) > 5 (0).
const train = [Int32Array.from([4, 3, 4]), Int32Array.from([4, 3, 0, 1, 2])]

function rankItems(prefix: number[]): number[] {
  const scores = createSPopScorer(train, 6).scoreBatch([Int32Array.from(prefix)]) as Float32Array
  return Array.from(topKIndices(scores, 0, 6, 6))
}

describe('createSPopScorer', () => {
  it('puts the most repeated prefix item first, then the other prefix items', () => {
    expect(rankItems([0, 2, 0]).slice(0, 2)).toEqual([0, 2])
  })

  it('ranks an unseen prefix item above every popular item outside the prefix', () => {
    expect(rankItems([5])).toEqual([5, 4, 3, 0, 1, 2])
  })

  it('breaks ties within the same prefix count by training popularity', () => {
    expect(rankItems([0, 3, 1])).toEqual([3, 0, 1, 4, 2, 5])
  })

  it('scores each row of a batch from its own prefix', () => {
    const scorer = createSPopScorer(train, 6)
    const scores = scorer.scoreBatch([Int32Array.from([5]), Int32Array.from([2])]) as Float32Array
    expect(topKIndices(scores, 0, 6, 1)[0]).toBe(5)
    expect(topKIndices(scores, 6, 6, 1)[0]).toBe(2)
  })
})
