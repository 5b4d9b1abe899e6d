import { describe, expect, it } from 'vitest'
import { createPopScorer } from './pop'

describe('createPopScorer', () => {
  it('gives every prefix the training click counts', () => {
    const train = [Int32Array.from([0, 1]), Int32Array.from([1, 2, 1]), Int32Array.from([1])]
    const scorer = createPopScorer(train, 4)
    const scores = scorer.scoreBatch([Int32Array.from([3]), Int32Array.from([0, 2])])
    expect(Array.from(scores as Float32Array)).toEqual([1, 4, 1, 0, 1, 4, 1, 0])
    expect(scorer.name).toBe('POP')
  })
})
