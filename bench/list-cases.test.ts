import { describe, expect, it } from 'vitest'
import { listCases } from './list-cases'

describe('held-out cases for the worker lists', () => {
  it('spreads cases over sessions of two or more items and cycles each cut point', () => {
    const sessions = [Int32Array.of(1, 2, 3), Int32Array.of(9), Int32Array.of(4, 5, 6, 7)]
    const cases = listCases(sessions, 10).map((c) => [Array.from(c.prefix), c.next])
    // Two usable sessions, so two cases: the first cut at 1, the second at 2.
    expect(cases).toEqual([
      [[1], 2],
      [[4, 5], 6],
    ])
    expect(listCases(sessions, 1).map((c) => c.next)).toEqual([2])
  })
})
