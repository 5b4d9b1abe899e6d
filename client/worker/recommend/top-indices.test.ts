import { describe, expect, it } from 'vitest'
import { createRandom } from '../../../shared/random'
import { selectTopIndices } from './top-indices'

describe('selectTopIndices', () => {
  it('matches a full sort, ties going to the lower index', () => {
    const random = createRandom(7)
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(random() * 300)
      // Few distinct values, so ties are common.
      const scores = Float32Array.from({ length: n }, () => Math.floor(random() * 20))
      const count = Math.floor(random() * (n + 5))
      const expected = Array.from({ length: n }, (_, i) => i)
        .sort((a, b) => scores[b]! - scores[a]! || a - b)
        .slice(0, count)
      expect(selectTopIndices(scores, count)).toEqual(expected)
    }
  })

  it('skips the given indices and NaN scores', () => {
    const scores = new Float32Array([0.9, NaN, 0.8, 0.95, 0.1])
    expect(selectTopIndices(scores, 3, new Set([3]))).toEqual([0, 2, 4])
    expect(selectTopIndices(scores, 0)).toEqual([])
  })
})
